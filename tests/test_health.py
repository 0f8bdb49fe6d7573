import socket

from webapp import create_app


def test_health_is_ok_with_database_and_redis_up(app):
    response = app.test_client().get("/api/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok", "workers": 0}


def test_health_counts_running_workers(app, worker):
    from tests.conftest import wait_until
    client = app.test_client()
    wait_until(lambda: client.get("/api/health").get_json()["workers"] == 1, message="worker registered")


def test_health_is_503_when_redis_is_down(app):
    # A port held but not listening: connecting to it is refused, as to a Redis that is down.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        degraded = create_app({"REDIS_URL": f"redis://127.0.0.1:{placeholder.getsockname()[1]}/0"})
        response = degraded.test_client().get("/api/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["redis"].startswith("error")
