from flask_wtf import FlaskForm
from wtforms import BooleanField, MultipleFileField, RadioField, SelectChoice, SubmitField

ON_DUPLICATE_CHOICES = [
    SelectChoice("skip", "Skip: keep the stored record, report the line as a duplicate"),
    SelectChoice("update", "Update: overwrite the stored record with the file's values"),
    SelectChoice("reject", "Reject: if any line is invalid or a duplicate, store nothing from the file"),
]


class UploadForm(FlaskForm):
    files = MultipleFileField("CSV files")
    on_duplicate = RadioField("When an email is already stored", choices=ON_DUPLICATE_CHOICES,
                              default="skip")
    validate_only = BooleanField("Validate only (dry run: full report, nothing stored)")
    submit = SubmitField("Upload")

    def chosen_files(self):
        return [file for file in self.files.data or [] if file and file.filename]
