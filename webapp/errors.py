"""Error pages: an operator sees what went wrong in words, never a stack trace.
Under /api/ the same errors answer JSON."""
from flask import render_template, request
from flask_wtf.csrf import CSRFError

# status: (title, what to tell a person when the code gave no reason of its own)
MESSAGES = {
    400: ("Bad request", "The request was not understood."),
    401: ("Log in first", "This address needs a logged-in operator."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    429: ("Too many requests", "Slow down and try again in a minute."),
    500: ("Something went wrong", "The error was logged. Try again; if it keeps happening, "
                                  "tell whoever runs Intake."),
}


def reason(error):
    """The description given to abort(), if any (not werkzeug's generic text)."""
    description = getattr(error, "description", None)
    return description if description and description != type(error).description else None


def page(status, title, message):
    if request.path.startswith("/api/"):
        return {"error": title, "message": message}, status
    return render_template("error.html", status=status, title=title, message=message), status


def register(app):
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return page(400, "Form expired", "The form was missing its security token or it expired. "
                                         "Go back, reload the page and submit again.")

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config["MAX_UPLOAD_MB"]
        return page(413, "Request too large", reason(error) or f"Uploads are limited to {limit} MB. "
                                                       "Split the file into smaller parts and upload them one by one.")

    def handler(status):
        title, message = MESSAGES[status]
        return lambda error: page(status, title, reason(error) or message)

    for status in MESSAGES:
        app.register_error_handler(status, handler(status))
