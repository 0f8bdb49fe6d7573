"""Jinja filters for numbers people read."""


def duration(seconds):
    """3 s, 2 min 5 s, 1 h 4 min."""
    seconds = int(round(seconds or 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def register(app):
    app.add_template_filter(duration)
