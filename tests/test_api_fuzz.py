"""Schemathesis sends requests generated from the OpenAPI document to the real
web process: whatever it sends, the API must never answer with a 5xx."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from webapp.api.openapi import spec

schema = schemathesis.openapi.from_dict(spec("http://127.0.0.1"))


@pytest.mark.filterwarnings("ignore")
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case, web_server, token):
    response = case.call(base_url=web_server, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, response.text
