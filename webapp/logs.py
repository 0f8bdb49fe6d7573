"""Log lines from every process; inside a job each carries its job and upload id.
LOG_FORMAT=json writes one JSON object per line."""
import json
import logging

from rq import get_current_job

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


class JobContext(logging.Filter):
    """Adds job_id and upload_id to records logged while an RQ job runs."""

    def filter(self, record):
        job = get_current_job()
        record.job_id = job.id if job else None
        record.upload_id = job.args[0] if job and job.args and isinstance(job.args[0], int) else None
        record.context = f" [job {record.job_id} upload {record.upload_id}]" if job else ""
        return True


class JsonLines(logging.Formatter):
    def format(self, record):
        line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "job_id": record.job_id, "upload_id": record.upload_id}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure(log_format):
    handler = logging.StreamHandler()
    handler.addFilter(JobContext())
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
