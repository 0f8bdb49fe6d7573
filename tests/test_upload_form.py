"""What the upload form refuses at once, before anything is queued."""
import pytest

from tests.ingest_helpers import post_files
from webapp.extensions import db
from webapp.models import Upload, UploadPiece

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def uploads_stored():
    return db.session.scalar(db.select(db.func.count(Upload.id)))


def test_the_form_page_explains_what_to_upload(client):
    page = client.get("/uploads/new").get_data(as_text=True)
    assert "email" in page and 'type="file"' in page and "Validate only" in page


def test_no_file_chosen(client):
    response = post_files(client, [])
    assert response.status_code == 400
    assert "Choose at least one CSV file." in response.get_data(as_text=True)
    assert uploads_stored() == 0


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\r\n\r\n\n", "the file is empty"),
    (PNG, "it looks like a PNG image"),
    (b"\x1f\x8b\x08\x00" + bytes(200), "a gzip archive (decompress it first)"),
    (b"\xff\xfee\x00m\x00a\x00i\x00l\x00", "UTF-16 text (save it as UTF-8)"),
    (b"\n\nemail\na@example.com\n", "no header row"),
    (b"name,phone\nAnn,123\n", "no email column in the header (found &#39;name&#39;, &#39;phone&#39;)"),
])
def test_hopeless_files_are_refused_next_to_the_field(client, content, message):
    response = post_files(client, [("people.csv", content)])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "people.csv: " in page and message in page
    assert uploads_stored() == 0


def test_an_oversized_upload_gets_a_friendly_413_page(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = post_files(client, [("big.csv", b"email\n" + b"a@example.com\n" * 200)])
    assert response.status_code == 413
    assert "Uploads are limited to" in response.get_data(as_text=True)
    assert uploads_stored() == 0


def test_a_good_file_is_stored_in_pieces_and_queued(client):
    content = b"email,name\n" + b"".join(b"p%d@example.com,P\n" % i for i in range(100_000))
    response = post_files(client, [("people.csv", content)])
    assert response.status_code == 303
    upload = db.session.scalar(db.select(Upload))
    assert response.location == f"/uploads/{upload.id}"
    assert upload.status == "queued" and upload.size_bytes == len(content)
    pieces = db.session.scalars(db.select(UploadPiece.data).filter_by(upload_id=upload.id)
                                .order_by(UploadPiece.seq)).all()
    assert len(pieces) > 1 and b"".join(pieces) == content


def test_several_files_become_several_uploads_and_bad_ones_are_named(client):
    response = post_files(client, [("one.csv", b"email\na@example.com\n"),
                                   ("two.csv", b"email\nb@example.com\n"),
                                   ("three.png", PNG)])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "three.png: this is not a CSV text file" in page
    assert sorted(db.session.scalars(db.select(Upload.filename))) == ["one.csv", "two.csv"]


def test_several_good_files_lead_to_the_uploads_list(client):
    response = post_files(client, [("one.csv", b"email\na@example.com\n"), ("two.csv", b"email\nb@x.org\n")])
    assert response.status_code == 303 and response.location == "/uploads"
    assert "one.csv" in client.get(response.location).get_data(as_text=True)


def test_the_uploads_list_moved_from_its_slashed_address(client):
    assert client.get("/uploads").status_code == 200
    response = client.get("/uploads/?status=failed&before=9")
    assert response.status_code == 308 and response.location == "/uploads?status=failed&before=9"


def test_a_file_name_with_directories_is_stored_without_them_and_shown_escaped(client):
    response = post_files(client, [("..\\../etc/<b>pässwd.csv", b"email\na@example.com\n")])
    upload = db.session.scalar(db.select(Upload))
    assert upload.filename == "<b>pässwd.csv"
    page = client.get(response.location).get_data(as_text=True)
    assert "&lt;b&gt;pässwd.csv" in page and "<b>pässwd" not in page


def test_an_invalid_utf8_file_is_marked_windows_1252(client):
    post_files(client, [("latin.csv", "email,name\na@example.com,Jos\u00e9\n".encode("latin-1"))])
    assert db.session.scalar(db.select(Upload.encoding)) == "cp1252"
