"""Error pages: an operator sees what went wrong in words, never a stack trace."""
from flask import render_template, request
from flask_wtf.csrf import CSRFError


def _wants_json():
    return request.path.startswith("/api/")


def _page(status, title, message):
    if _wants_json():
        return {"error": title, "message": message}, status
    return render_template("error.html", status=status, title=title, message=message), status


def register(app):
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _page(400, "Form expired", "The form was missing its security token or it expired. "
                                          "Go back, reload the page and submit again.")

    @app.errorhandler(400)
    def bad_request(error):
        return _page(400, "Bad request", getattr(error, "description", "The request was not understood."))

    @app.errorhandler(401)
    def unauthorized(error):
        return _page(401, "Log in first", "This address needs a logged-in operator.")

    @app.errorhandler(404)
    def not_found(error):
        return _page(404, "Not found", "There is nothing at this address.")

    @app.errorhandler(405)
    def method_not_allowed(error):
        return _page(405, "Method not allowed", "This address does not accept that kind of request.")

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config["MAX_UPLOAD_MB"]
        return _page(413, "File too large", f"Uploads are limited to {limit} MB. "
                                            "Split the file into smaller parts and upload them one by one.")

    @app.errorhandler(500)
    def server_error(error):
        return _page(500, "Something went wrong", "The error was logged. Try again; if it keeps "
                                                  "happening, tell whoever runs Intake.")
