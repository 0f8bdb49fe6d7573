"""The Workers page: RQ workers, queues, failed and periodic jobs, and how to add a worker."""
from webapp.monitor.views import blueprint

__all__ = ["blueprint"]
