"""The least a Flask app can do for the JSON API's two POST routes: read the body,
parse its JSON and answer 202, storing nothing. bench/api_client.py --floor
serves it with the Procfile's web line (gunicorn, gevent) and puts the same load
on it, so that Intake's accept figures can be read against what Flask on that
server reaches on the same machine in the same run.
"""
from itertools import count

from flask import Flask, jsonify, request

app = Flask(__name__)
job_ids = count(1)


@app.get("/api/health")
def health():
    return jsonify(status="ok")


@app.get("/api/jobs/<int:job_id>")
def job(job_id):
    return jsonify(id=job_id)


@app.post("/api/ingest")
def ingest():
    records = request.get_json()["records"]
    job_id = next(job_ids)
    return jsonify(job_id=job_id, status="queued", status_url=f"/api/jobs/{job_id}", received=len(records)), 202


@app.post("/api/records")
def records():
    request.get_json()
    return jsonify(accepted=1), 202
