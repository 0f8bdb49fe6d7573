"""The RQ worker class the Procfile starts: every job runs inside the Flask app context.

    rq worker --worker-class jobs.worker.AppWorker ingest
"""
from rq.worker import Worker

from webapp import create_app, logs
from webapp.extensions import db


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = create_app(migrations=False)
        logs.configure(self.app.config["LOG_FORMAT"])

    def perform_job(self, *args, **kwargs):
        with self.app.app_context():
            # The work horse is a fork: never reuse connections the parent opened.
            db.engine.dispose(close=False)
            return super().perform_job(*args, **kwargs)
