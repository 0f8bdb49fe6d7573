from webapp.extensions import db
from webapp.models import Operator


def test_operators_create_and_list(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["operators", "create", "New@Example.com", "--password", "s3cret"])
    assert result.exit_code == 0, result.output
    operator = db.session.scalar(db.select(Operator))
    assert operator.email == "new@example.com" and operator.check_password("s3cret")
    assert "new@example.com" in runner.invoke(args=["operators", "list"]).output


def test_operators_create_prompts_for_the_password(app):
    result = app.test_cli_runner().invoke(args=["operators", "create", "p@example.com"],
                                          input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(db.select(Operator)).check_password("pw")


def test_a_second_operator_with_the_same_email_is_refused(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["operators", "create", "a@example.com", "--password", "x"])
    result = runner.invoke(args=["operators", "create", "A@example.com", "--password", "y"])
    assert result.exit_code != 0 and "already exists" in result.output


def test_bootstrap_creates_a_first_operator_only_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["operators", "bootstrap"])
    password = first.output.strip().rsplit(" ", 1)[1]
    assert db.session.scalar(db.select(Operator)).check_password(password)
    second = runner.invoke(args=["operators", "bootstrap"])
    assert "existing operator" in second.output
    assert db.session.scalar(db.select(db.func.count(Operator.id))) == 1
