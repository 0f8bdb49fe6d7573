"""The Redis pub/sub channel that says "upload N changed". Events carry no
numbers: listeners read the truth from PostgreSQL."""
UPLOAD_EVENTS = "intake:uploads"
