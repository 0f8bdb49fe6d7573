"""An upload's throughput chart: lines per second at each checkpoint its job
saved, drawn over the time since the job first started.

Each run of the job (the first, and each resume after a worker died or a
retry) is a line of its own. Between two runs nothing was saved: the chart
shows that stall as a gap, and marks where the next run began.
"""
from dataclasses import dataclass, field

from webapp.charts import height_percent, percent, scale_top
from webapp.extensions import db
from webapp.formatting import duration
from webapp.models import UploadCheckpoint, UploadStatus, utcnow



@dataclass
class Point:
    seconds: float      # since the job first started
    rate: float         # lines per second over the chunk it saved
    x: float = 0.0      # percent of the plot's width
    y: float = 0.0      # percent of the plot's height, from the top


@dataclass
class Run:
    started_seconds: float
    points: list = field(default_factory=list)
    stalled_seconds: float | None = None  # since the run before saved its last checkpoint; None for the first
    x: float = 0.0

    @property
    def segments(self):
        return list(zip(self.points, self.points[1:]))


@dataclass
class ThroughputChart:
    runs: list
    seconds: float      # the time the chart spans

    @property
    def points(self):
        return [point for run in self.runs for point in run.points]

    @property
    def resumes(self):
        return self.runs[1:]

    @property
    def peak_rate(self):
        return max(point.rate for point in self.points)

    @property
    def top_rate(self):
        return scale_top(self.peak_rate)

    @property
    def span_label(self):
        """How long the chart spans, to a tenth of a second while that is short."""
        return f"{self.seconds:.1f} s" if self.seconds < 10 else duration(self.seconds)


def throughput_chart(upload):
    """The chart of `upload`, or None before its first checkpoint."""
    checkpoints = db.session.execute(
        db.select(UploadCheckpoint.run_started_at, UploadCheckpoint.saved_at, UploadCheckpoint.lines)
        .where(UploadCheckpoint.upload_id == upload.id).order_by(UploadCheckpoint.id)).all()
    if not checkpoints:
        return None
    origin = checkpoints[0].run_started_at
    # A running job's chart reaches to now, so that a stall shows while it lasts.
    end = upload.finished_at or (utcnow() if upload.status in UploadStatus.ACTIVE else origin)
    chart = ThroughputChart(runs_of(checkpoints, origin), (max(end, checkpoints[-1].saved_at) - origin).total_seconds())
    place(chart)
    return chart


def runs_of(checkpoints, origin):
    """The checkpoints grouped by the run that saved them, each with the rate of its chunk."""
    runs, previous = [], None
    for checkpoint in checkpoints:
        if previous is None or checkpoint.run_started_at != previous.run_started_at:
            stalled = (checkpoint.run_started_at - previous.saved_at).total_seconds() if previous else None
            runs.append(Run((checkpoint.run_started_at - origin).total_seconds(), stalled_seconds=stalled))
            chunk_started = checkpoint.run_started_at
        else:
            chunk_started = previous.saved_at
        seconds = (checkpoint.saved_at - chunk_started).total_seconds()
        rate = checkpoint.lines / seconds if seconds > 0 else 0.0
        runs[-1].points.append(Point((checkpoint.saved_at - origin).total_seconds(), rate))
        previous = checkpoint
    return runs


def place(chart):
    for run in chart.runs:
        run.x = percent(run.started_seconds, chart.seconds)
        for point in run.points:
            point.x = percent(point.seconds, chart.seconds)
            point.y = height_percent(point.rate, chart.top_rate)
