"""API tokens: operators create and revoke them on /settings/tokens, or with
flask --app wsgi tokens create NAME."""
import click
from flask import Blueprint, flash, redirect, render_template, url_for
from flask.cli import AppGroup
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from webapp.addresses import redirect_slashed_prefix
from webapp.extensions import db
from webapp.models import ApiToken, utcnow

blueprint = Blueprint("tokens", __name__, url_prefix="/settings/tokens")
redirect_slashed_prefix(blueprint, "index")
cli = AppGroup("tokens", help="Manage API tokens.")


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)],
                       description="Who or what uses it, e.g. 'billing service'.")
    submit = SubmitField("Create token")


def issue(name, operator_id=None):
    token, secret = ApiToken.issue(name.strip(), operator_id)
    db.session.add(token)
    db.session.commit()
    return secret


@blueprint.route("", methods=["GET", "POST"])
def index():
    form, secret = TokenForm(), None
    if form.validate_on_submit():
        secret = issue(form.name.data, current_user.id)
        form = TokenForm(formdata=None)
    tokens = db.session.scalars(db.select(ApiToken).order_by(ApiToken.revoked_at.is_not(None),
                                                             ApiToken.id.desc())).all()
    return render_template("tokens/index.html", form=form, tokens=tokens, secret=secret)


@blueprint.post("/<id:token_id>/revoke")
def revoke(token_id):
    token = db.get_or_404(ApiToken, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
        flash(f"Token '{token.name}' is revoked; it stops working within seconds.", "info")
    return redirect(url_for("tokens.index"), code=303)


@cli.command("create")
@click.argument("name")
def create_token(name):
    """Create an API token called NAME and print it (it is shown only once)."""
    click.echo(issue(name))
