"""Live progress: a WebSocket feed of HTML fragments, and the same fragments for polling."""
from webapp.live.views import blueprint

__all__ = ["blueprint"]
