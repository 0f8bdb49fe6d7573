"""Why a line was rejected, in one word: "invalid" or "duplicate".

row_errors has no column for it: the ingest job files a duplicate under the
email column with one of the reasons below (jobs/rows.py and
jobs/chunk_writer.py write them), so the kind is read from the reason. This
expression is the only place that tells the two apart; the API, the report
and the upload page all select it.
"""
from sqlalchemy import and_, case, or_

from webapp.models import RowError

KINDS = ("invalid", "duplicate")
# "duplicate of line 7 in this file", "duplicate of record 7 in this batch",
# "email is already stored (record #42); kept the stored record". No invalid
# email's reason starts so: it quotes the address first.
DUPLICATE_REASON_STARTS = ("duplicate of ", "email is already stored (record #")

ROW_ERROR_KIND = case(
    (and_(RowError.column_name == "email",
          or_(*(RowError.reason.startswith(start, autoescape=True) for start in DUPLICATE_REASON_STARTS))),
     "duplicate"),
    else_="invalid")
