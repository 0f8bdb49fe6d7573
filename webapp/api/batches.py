"""An API batch stored as an upload, in one statement, before its 202.

The batch becomes a CSV file, email first, so that it takes the same road as
an uploaded file. Intake writes that file itself, so none of the checks an
operator's file needs apply (encoding, delimiter, header, binary content), and
the upload row and its pieces go in together: one statement, committed, with
nothing to read back.
"""
import csv
import io

from sqlalchemy import LargeBinary, literal
from sqlalchemy.dialects.postgresql import ARRAY

from webapp.extensions import db
from webapp.models import Upload, UploadPiece
from webapp.uploads.storage import PIECE_SIZE


def batch_csv(records):
    columns = list(dict.fromkeys(["email", *(name for record in records for name in record)]))
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([record.get(name, "") for name in columns] for record in records)
    return text.getvalue().encode()


def store_batch(records, caller, on_duplicate, validate_only):
    """Store the batch as a queued upload (committed); returns its id."""
    data = batch_csv(records)
    upload = db.insert(Upload).values(
        filename=f"API batch of {len(records):,} records", operator_id=caller.operator_id, source="api",
        source_name=caller.name, expected_lines=len(records), on_duplicate=on_duplicate,
        validate_only=validate_only, size_bytes=len(data),
    ).returning(Upload.id).cte("upload")
    pieces = db.func.unnest(literal([data[start:start + PIECE_SIZE] for start in range(0, len(data), PIECE_SIZE)],
                                    ARRAY(LargeBinary))).table_valued("data", with_ordinality="seq").render_derived()
    statement = (db.insert(UploadPiece)
                 .from_select(["upload_id", "seq", "data"], db.select(upload.c.id, pieces.c.seq - 1, pieces.c.data)
                              .select_from(upload.join(pieces, db.true())))
                 .returning(UploadPiece.upload_id))
    upload_id = db.session.execute(statement).scalars().first()
    db.session.commit()
    return upload_id
