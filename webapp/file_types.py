"""Which kind of file an upload is, told by its name: a workbook (.xlsx), JSON
Lines (.jsonl) or, for any other name, CSV. The form and the ingest job both
ask here, of the name the upload is stored under."""
from pathlib import PurePath

CSV, XLSX, JSONL = "csv", "xlsx", "jsonl"
SUFFIXES = {".xlsx": XLSX, ".jsonl": JSONL}


def file_type(filename):
    return SUFFIXES.get(PurePath(filename).suffix.lower(), CSV)
