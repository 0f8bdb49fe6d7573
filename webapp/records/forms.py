from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField

from webapp.validation import FIELDS, normalize_email, record_problems


def stripped(value):
    return value.strip() if isinstance(value, str) else value


class RecordForm(FlaskForm):
    """New and edit forms. What is valid is decided by webapp.validation alone."""
    email = StringField("Email", filters=[stripped])
    first_name = StringField("First name", filters=[stripped])
    last_name = StringField("Last name", filters=[stripped])
    phone = StringField("Phone", filters=[stripped])
    company = StringField("Company", filters=[stripped])
    city = StringField("City", filters=[stripped])
    country = StringField("Country", filters=[stripped])
    submit = SubmitField("Save")

    def values(self):
        return {name: self[name].data or "" for name in FIELDS}

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        problems = record_problems(self.values())
        for name, reason in problems:
            self[name].errors.append(reason)
        return valid and not problems

    def fill(self, record):
        """Copy the entered values onto `record`; empty fields become NULL."""
        values = self.values()
        for name in FIELDS:
            setattr(record, name, values[name] or None)
        record.email_norm = normalize_email(values["email"])
