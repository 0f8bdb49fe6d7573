"""An upload's counters and checkpoint, advanced with each chunk written."""

SAVE_PROGRESS = """
    UPDATE uploads SET lines_read = lines_read + %(lines)s, rows_inserted = rows_inserted + %(inserted)s,
        rows_updated = rows_updated + %(updated)s, rows_invalid = rows_invalid + %(invalid)s,
        duplicates_in_file = duplicates_in_file + %(duplicates_in_file)s,
        duplicates_existing = duplicates_existing + %(duplicates_existing)s,
        checkpoint_records = checkpoint_records + %(records)s,
        bytes_processed = %(bytes_read)s, heartbeat_at = now()
    WHERE id = %(upload_id)s RETURNING cancel_requested"""

# The upload page draws the job's throughput from these rows.
NOTE_CHECKPOINT = """
    INSERT INTO upload_checkpoints (upload_id, run_started_at, lines)
    VALUES (%(upload_id)s, %(run_started_at)s, %(lines)s)"""


def save_progress(connection, upload_id, chunk, written, checkpoint, run_started_at=None):
    """Add the chunk to the upload's counters; True when a cancel was asked for.

    With `checkpoint`, the chunk's records also move the resume point on. With
    `run_started_at`, when the run of the ingest job began, the chunk is also
    noted in the upload's checkpoint history.
    """
    values = dict(lines=chunk.lines, inserted=written.inserted, updated=written.updated,
                  invalid=chunk.invalid, duplicates_in_file=written.duplicates_in_file,
                  duplicates_existing=written.duplicates_existing,
                  records=chunk.records if checkpoint else 0, bytes_read=chunk.bytes_read,
                  upload_id=upload_id)
    cancel_requested = connection.execute(SAVE_PROGRESS, values).fetchone()[0]
    if run_started_at:
        connection.execute(NOTE_CHECKPOINT, dict(upload_id=upload_id, run_started_at=run_started_at, lines=chunk.lines))
    return cancel_requested
