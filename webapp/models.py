"""The database schema. Migrations under migrations/ are the source of truth;
these classes describe the same tables for the application code."""
import hashlib
import secrets
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, Identity, Index, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db


def utcnow():
    return datetime.now(timezone.utc)


class Operator(UserMixin, db.Model):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    password_hash: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    session_token: Mapped[str] = mapped_column(default=lambda: secrets.token_hex(16))

    def get_id(self):
        """What the session cookie holds: rotating session_token logs out every old cookie."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self):
        self.session_token = secrets.token_hex(16)

    def set_password(self, password):
        self.password_hash = generate_password_hash(password)

    def check_password(self, password):
        return check_password_hash(self.password_hash, password)


class UploadStatus:
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ACTIVE = (QUEUED, RUNNING)
    FINISHED = (COMPLETED, FAILED, CANCELLED)


class Upload(db.Model):
    """One file (or API batch) and everything known about its ingest.

    The counters and the checkpoint are committed with each chunk of records,
    so they are always the truth about what is in `records`.
    """
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str]
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(default="form")
    source_name: Mapped[str | None]
    expected_lines: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    on_duplicate: Mapped[str] = mapped_column(default="skip")
    validate_only: Mapped[bool] = mapped_column(default=False)
    encoding: Mapped[str] = mapped_column(default="utf-8")
    delimiter: Mapped[str] = mapped_column(default=",")
    status: Mapped[str] = mapped_column(default=UploadStatus.QUEUED, index=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    lines_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_inserted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_updated: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates_in_file: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates_existing: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_invalid: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_processed: Mapped[int] = mapped_column(BigInteger, default=0)
    checkpoint_records: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None]
    raw_deleted_at: Mapped[datetime | None]
    # Its rows are loading into a table of its own (jobs/partition.py), which records shows once
    # it is attached as a partition when the load ends.
    loading_alone: Mapped[bool] = mapped_column(default=False)
    indexing_started_at: Mapped[datetime | None]

    operator = relationship(Operator)

    @property
    def duplicates(self):
        return self.duplicates_in_file + self.duplicates_existing

    @staticmethod
    def own_table_name(upload_id):
        """The table of an upload loaded into a partition of its own (jobs/partition.py)."""
        return f"records_upload_{upload_id}"

    @property
    def own_table(self):
        return self.own_table_name(self.id)


    @property
    def elapsed_seconds(self):
        if not self.started_at:
            return 0.0
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()

    @property
    def rows_per_second(self):
        elapsed = self.elapsed_seconds
        return self.lines_read / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self):
        """Seconds left at the rate so far; None when there is no rate yet."""
        elapsed = self.elapsed_seconds
        if self.status != UploadStatus.RUNNING or not self.bytes_processed or elapsed <= 0:
            return None
        return (self.size_bytes - self.bytes_processed) / (self.bytes_processed / elapsed)

    @property
    def can_cancel(self):
        return self.status in UploadStatus.ACTIVE

    @property
    def can_retry(self):
        return self.status in (UploadStatus.FAILED, UploadStatus.CANCELLED) and self.raw_deleted_at is None

    @property
    def percent(self):
        if self.status == UploadStatus.COMPLETED:
            return 100
        if not self.size_bytes:
            return 0
        return min(100, int(100 * self.bytes_processed / self.size_bytes))


class UploadPiece(db.Model):
    """The raw bytes of an upload, in ordered pieces, so that any worker on any
    host can stream the file from PostgreSQL."""
    __tablename__ = "upload_pieces"

    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Record(db.Model):
    """A stored record. `records` is partitioned by `segment`: 0 for the shared
    partition, else the id of the large upload whose own partition holds it."""
    __tablename__ = "records"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str]
    email_norm: Mapped[str]
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    phone: Mapped[str | None]
    company: Mapped[str | None]
    city: Mapped[str | None]
    country: Mapped[str | None]
    extra: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id", ondelete="SET NULL"))
    source_line: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    segment: Mapped[int] = mapped_column(default=0)


class RecordEmail(db.Model):
    """The registry of stored emails: its primary key on the normalized email is
    what keeps an email stored once across every partition of `records`."""
    __tablename__ = "record_emails"

    email_norm: Mapped[str] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(BigInteger)
    segment: Mapped[int]
    upload_id: Mapped[int | None]
    source_line: Mapped[int | None]


class RowError(db.Model):
    """A line of an upload that was not stored, and why."""
    __tablename__ = "row_errors"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(BigInteger)
    column_name: Mapped[str | None]
    reason: Mapped[str]
    raw_line: Mapped[str | None]

    __table_args__ = (Index("ix_row_errors_upload_line", "upload_id", "line"),)


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    token_hash: Mapped[str] = mapped_column(unique=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @staticmethod
    def hash(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, name, operator_id=None):
        """A new token and its secret, which is shown once and never stored."""
        secret = "intake_" + secrets.token_urlsafe(32)
        return cls(name=name, token_hash=cls.hash(secret), operator_id=operator_id), secret


class UploadCheckpoint(db.Model):
    """One chunk an ingest job saved: the history its throughput chart is drawn from."""
    __tablename__ = "upload_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    run_started_at: Mapped[datetime]    # when the run of the job that saved it began: a resume starts a new run
    saved_at: Mapped[datetime] = mapped_column(server_default=func.clock_timestamp())
    lines: Mapped[int] = mapped_column(BigInteger)     # the chunk's lines

    __table_args__ = (Index("ix_upload_checkpoints_upload", "upload_id", "id"),)
