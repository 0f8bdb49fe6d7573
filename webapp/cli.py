"""Command-line management: flask --app wsgi operators create|list."""
import secrets

import click
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from webapp.archive_restore import cli as archive_cli
from webapp.extensions import db
from webapp.models import Operator
from webapp.tokens import cli as tokens_cli
from webapp.validation import normalize_email

operators = AppGroup("operators", help="Manage the operators who can log in.")


@operators.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for when left out.")
def create_operator(email, password):
    """Create an operator who can log in with EMAIL and PASSWORD."""
    operator = Operator(email=normalize_email(email))
    operator.set_password(password)
    db.session.add(operator)
    try:
        db.session.commit()
    except IntegrityError:
        raise click.ClickException(f"An operator {operator.email} already exists.") from None
    click.echo(f"Created operator {operator.email}")


@operators.command("list")
def list_operators():
    """List operators, oldest first."""
    for operator in db.session.scalars(db.select(Operator).order_by(Operator.id)):
        click.echo(f"{operator.email}\tcreated {operator.created_at:%Y-%m-%d %H:%M}")


@operators.command("bootstrap")
@click.option("--email", default="admin@intake.local", show_default=True)
def bootstrap_operator(email):
    """Create a first operator with a random password when there is none."""
    if db.session.scalar(db.select(Operator.id).limit(1)):
        click.echo("Log in with an existing operator (flask --app wsgi operators list).")
        return
    password = secrets.token_urlsafe(12)
    operator = Operator(email=email)
    operator.set_password(password)
    db.session.add(operator)
    db.session.commit()
    click.echo(f"Created the first operator. Log in as {email} with password {password}")


def register(app):
    app.cli.add_command(operators)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(archive_cli)
