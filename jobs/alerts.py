"""The e-mail sent when an upload fails for good: to the operator who uploaded
it and to ALERT_EMAIL, through the SMTP server of the SMTP_* settings. Without
SMTP_HOST nothing is sent."""
import logging
import smtplib
import ssl
from email.message import EmailMessage

from flask import current_app, url_for

from webapp.extensions import db
from webapp.models import Upload, UploadStatus

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 10


def send_failure_email(upload_id):
    """True when sent. Never raises: the failure is already recorded, and a
    mail server that is down must not turn that into a failed job."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        return False
    try:
        message = failure_message(upload_id, config)
        if message is None:
            return False
        send(message, config)
    except Exception:  # whatever went wrong, the job goes on; the log says what
        log.exception("could not send the failure e-mail for upload %s", upload_id)
        return False
    log.info("sent the failure e-mail for upload %s to %s", upload_id, message["To"])
    return True


def failure_message(upload_id, config):
    """None when the upload is not failed (a late copy of a job) or nobody is to be told."""
    upload = db.session.get(Upload, upload_id, populate_existing=True)
    if upload is None or upload.status != UploadStatus.FAILED:
        return None
    recipients = list(dict.fromkeys(filter(None, [upload.operator.email if upload.operator else None,
                                                  *alert_addresses(config)])))
    if not recipients:
        return None
    filename = " ".join(upload.filename.split())  # no line breaks in a Subject header
    message = EmailMessage()
    message["Subject"] = f"Intake: {filename} failed"
    message["From"] = config["SMTP_FROM"]
    message["To"] = ", ".join(recipients)
    message.set_content(f"The upload {filename} failed.\n\n"
                        f"Reason: {upload.failure_reason or 'none was recorded'}\n\n"
                        f"Details and the rejected lines: {upload_url(upload_id, config)}\n")
    return message


def alert_addresses(config):
    return [address.strip() for address in (config["ALERT_EMAIL"] or "").split(",") if address.strip()]


def upload_url(upload_id, config):
    # url_for builds external links from a request; PUBLIC_URL stands in for one.
    with current_app.test_request_context(base_url=config["PUBLIC_URL"]):
        return url_for("uploads.show", upload_id=upload_id, _external=True)


def send(message, config):
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=SMTP_TIMEOUT) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
