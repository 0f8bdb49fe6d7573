from typing import NamedTuple

from flask_wtf import FlaskForm
from wtforms import BooleanField, MultipleFileField, RadioField, SelectChoice, StringField, SubmitField

ON_DUPLICATE_CHOICES = [
    SelectChoice("skip", "Skip: keep the stored record, report the line as a duplicate"),
    SelectChoice("update", "Update: overwrite the stored record with the file's values"),
    SelectChoice("reject", "Reject: if any line is invalid or a duplicate, store nothing from the file"),
]


class ChosenFile(NamedTuple):
    """A file sent with the form, and the sheet to read if it is a workbook (None: the first)."""
    filename: str
    stream: object
    sheet: str | None


class UploadForm(FlaskForm):
    files = MultipleFileField("Files (CSV, Excel .xlsx or JSON Lines .jsonl)")
    sheet = StringField("Sheet of an Excel workbook")
    on_duplicate = RadioField("When an email is already stored", choices=ON_DUPLICATE_CHOICES,
                              default="skip")
    validate_only = BooleanField("Validate only (dry run: full report, nothing stored)")
    submit = SubmitField("Upload")

    def chosen_files(self):
        sheet = (self.sheet.data or "").strip() or None
        return [ChosenFile(file.filename, file.stream, sheet) for file in self.files.data or []
                if file and file.filename]
