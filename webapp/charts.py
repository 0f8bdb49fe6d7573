"""Placing numbers on the charts the pages draw as SVG. Every position is a
percentage of the plot, so a chart stretches to any width while its points
stay round and its text keeps its size (and no style attribute is needed,
which the Content-Security-Policy would refuse)."""
import math


def scale_top(value):
    """The top of a chart's scale: the smallest 1, 2 or 5 × 10ⁿ at or above `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if value <= step * power)


def percent(value, top):
    """`value` as a percentage of `top`, for a width or an x position."""
    return round(100 * value / top, 2) if top else 0


def height_percent(value, top):
    """The y position of `value` on a scale up to `top`: SVG counts y from the top."""
    return round(100 - percent(value, top), 2)
