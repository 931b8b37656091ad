"""API keys and the shape of errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from transcoder.api import create_app
from transcoder.errors import ConfigError

pytestmark = pytest.mark.services


def test_health_needs_no_key(client):
    client.headers.pop("Authorization")

    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/videos", "/profiles", "/metrics", "/videos/abc"])
def test_routes_need_a_key(client, path):
    client.headers.pop("Authorization")

    response = client.get(path)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthorized",
            "message": "an API key is required (Authorization: Bearer <key>)",
        }
    }
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_key_is_forbidden(client):
    response = client.get("/videos", headers={"Authorization": "Bearer not-a-key"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_second_configured_key_works(client):
    assert (
        client.get("/videos", headers={"Authorization": "Bearer test-key-two"}).status_code == 200
    )


def test_key_never_reaches_the_logs(client, caplog):
    caplog.set_level("DEBUG")
    client.get("/videos", headers={"Authorization": "Bearer wrong-key-xyz"})
    client.get("/videos")

    assert "wrong-key-xyz" not in caplog.text and "test-key-one" not in caplog.text


def test_unknown_video_is_a_json_404(client):
    response = client.get("/videos/" + "0" * 32)

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no video with id " + "0" * 32}
    }


def test_invalid_query_is_a_json_422(client):
    response = client.get("/videos?limit=100000")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert "limit" in response.json()["error"]["message"]


def test_profiles_lists_the_web_ladder(client):
    (web,) = client.get("/profiles").json()

    assert web["name"] == "web"
    assert [r["size"] for r in web["rungs"]] == [1080, 720, 480, 360, 240]
    assert {f["container"] for f in web["formats"]} == {"mp4", "webm"}


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/videos/{video_id}/retry" in schema["paths"]


def test_api_refuses_to_start_without_keys(farm_settings):
    with pytest.raises(ConfigError, match="TRANSCODER_API_KEYS"):
        create_app(farm_settings)


def test_database_outage_is_a_503_with_a_clear_message(api_settings):
    down = api_settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"}
    )
    with TestClient(create_app(down), raise_server_exceptions=False) as c:
        response = c.get("/videos", headers={"Authorization": "Bearer test-key-one"})

    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "code": "unavailable",
            "message": "the database is unavailable; try again shortly",
        }
    }
    assert "Traceback" not in response.text
