"""An upload's counters and checkpoint, advanced with each chunk written."""

SAVE_PROGRESS = """
    UPDATE uploads SET lines_read = lines_read + %(lines)s, rows_inserted = rows_inserted + %(inserted)s,
        rows_updated = rows_updated + %(updated)s, rows_invalid = rows_invalid + %(invalid)s,
        duplicates_in_file = duplicates_in_file + %(duplicates_in_file)s,
        duplicates_existing = duplicates_existing + %(duplicates_existing)s,
        checkpoint_records = checkpoint_records + %(records)s,
        bytes_processed = %(bytes_read)s, heartbeat_at = now()
    WHERE id = %(upload_id)s RETURNING cancel_requested"""


def save_progress(connection, upload_id, chunk, written, checkpoint):
    """Add the chunk to the upload's counters; True when a cancel was asked for.

    With `checkpoint`, the chunk's records also move the resume point on.
    """
    values = dict(lines=chunk.lines, inserted=written.inserted, updated=written.updated,
                  invalid=chunk.invalid, duplicates_in_file=written.duplicates_in_file,
                  duplicates_existing=written.duplicates_existing,
                  records=chunk.records if checkpoint else 0, bytes_read=chunk.bytes_read,
                  upload_id=upload_id)
    return connection.execute(SAVE_PROGRESS, values).fetchone()[0]
