"""The OpenAPI 3.1 description of /api/, served as JSON and as a page."""
from flask import Blueprint, render_template, url_for

from webapp.api.views import ERRORS_PAGE, MAX_BATCH, MAX_BUFFERED, blueprint as api
from webapp.rejections import KINDS

docs_blueprint = Blueprint("api_docs", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
VALUE = {"type": ["string", "number", "null"]}
RECORD = {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"],
          "additionalProperties": VALUE,
          "description": "email, first_name, last_name, phone, company, city, country (or their usual "
                         "aliases); any other key is kept as an extra column"}


def _error(description):
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _json(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


COMMON = {"401": _error("missing, unknown or revoked token")}

JOB = {"type": "object", "properties": {
    "id": {"type": "integer"},
    "status": {"enum": ["queued", "running", "completed", "failed", "cancelled"]},
    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
    "counts": {"type": "object", "properties": {name: {"type": ["integer", "null"]} for name in
                                                ("received", "inserted", "updated", "duplicate", "invalid")}},
    "errors_url": {"type": "string"}, "created_at": {"type": "string"},
    "finished_at": {"type": ["string", "null"]}, "failure_reason": {"type": ["string", "null"]}}}

PATHS = {
    "/api/health": {"get": {
        "summary": "Can Intake reach PostgreSQL and Redis? (no token needed)", "security": [],
        "responses": {"200": _json("healthy", {"type": "object"}), "503": _json("degraded", {"type": "object"})}}},
    "/api/ingest": {"post": {
        "summary": f"Queue a batch of up to {MAX_BATCH:,} records; answers at once with a job",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["records"], "additionalProperties": False, "properties": {
                "records": {"type": "array", "items": RECORD, "minItems": 1, "maxItems": MAX_BATCH},
                "on_duplicate": {"enum": ["skip", "update", "reject"], "default": "skip"},
                "validate_only": {"type": "boolean", "default": False}}}}}},
        "responses": {"202": _json("queued", {"type": "object", "properties": {
            "job_id": {"type": "integer"}, "status": {"type": "string"}, "status_url": {"type": "string"}}}),
            "400": _error("not JSON"), "413": _error("too many records or too large"),
            "422": _error("wrong shape; `path` names the problem"), **COMMON}}},
    "/api/jobs/{job_id}": {"get": {
        "summary": "A batch job's status and counts",
        "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("the job", JOB), "404": _error("no such job"), **COMMON}}},
    "/api/jobs/{job_id}/errors": {"get": {
        "summary": f"The records a job rejected, {ERRORS_PAGE} at a time",
        "description": "Each is `invalid` (counted in the job's `invalid`) or a `duplicate` of an earlier "
                       "record of the batch or of a stored record (counted in its `duplicate`).",
        "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                       {"name": "after", "in": "query", "schema": {"type": "integer"},
                        "description": "the last index of the previous page"},
                       {"name": "kind", "in": "query", "schema": {"enum": list(KINDS)},
                        "description": f"only the errors of this kind ({' or '.join(KINDS)}); every kind "
                                       "when left out"}],
        "responses": {"200": _json("a page of errors", {"type": "object", "properties": {
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "kind": {"enum": list(KINDS)},
                "field": {"type": ["string", "null"]}, "reason": {"type": "string"}}}},
            "next": {"type": ["string", "null"]}}}),
            "400": _error("an unknown kind"), "404": _error("no such job"), **COMMON}}},
    "/api/records": {"post": {
        "summary": f"Buffer one record (or up to {MAX_BUFFERED}); stored within seconds into today's "
                   "API stream upload",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            RECORD, {"type": "object", "required": ["records"], "properties": {
                "records": {"type": "array", "items": RECORD, "minItems": 1, "maxItems": MAX_BUFFERED}}}]}}}},
        "responses": {"202": _json("accepted", {"type": "object", "properties": {"accepted": {"type": "integer"}}}),
                      "400": _error("not JSON"), "413": _error("too many records"),
                      "422": _error("wrong shape"), **COMMON}}},
    "/api/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": _json("OpenAPI 3.1", {"type": "object"}), **COMMON}}},
    "/api/docs": {"get": {"summary": "This document as a page, for logged-in operators", "security": [],
                          "responses": {"200": {"description": "HTML",
                                                "content": {"text/html": {"schema": {"type": "string"}}}}}}},
}


def spec(server_url):
    return {
        "openapi": "3.1.0",
        "info": {"title": "Intake API", "version": "1.0",
                 "description": "Push records into Intake: batches become jobs like CSV uploads; single "
                                "records are buffered and stored within seconds."},
        "servers": [{"url": server_url}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {
                "error": {"type": "string"}, "message": {"type": "string"}, "path": {"type": "string"}}}}},
        "security": [{"bearer": []}],
    }


def server_url():
    return url_for("dashboard.index", _external=True).rstrip("/")


@api.get("/openapi.json")
def openapi_json():
    return spec(server_url())


@docs_blueprint.get("/api/docs")
def docs():
    return render_template("api/docs.html", spec=spec(server_url()))
