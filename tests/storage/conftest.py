"""A real S3 endpoint for storage tests: moto's server on 127.0.0.1, a fresh bucket per test.

Every client here gets an explicit endpoint and dummy credentials, and the environment is
stripped of anything that could send boto3 elsewhere (profiles, endpoint overrides, proxies,
the instance metadata service), so no request ever leaves this machine.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from transcoder.settings import Settings

REGION = "us-east-1"
ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"

# Anything that could point boto3 (or urllib) at another host or a local AWS profile.
_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server running in this process for the whole session."""
    with pytest.MonkeyPatch.context() as env:
        _isolate_from_aws(env, tmp_path_factory.mktemp("aws-config"))
        # Port 0: the OS picks a free port and the server keeps it, so nothing can take it first.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str):
    """A plain boto3 client, to create buckets and to look at what the storage wrote."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """Name of a new, empty bucket for this test."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> Settings:
    """Embedded settings (SQLite, jobs in-process) that store everything in a fresh bucket."""
    return Settings(
        storage="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=s3_bucket,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY_ID,
        s3_secret_access_key=SECRET_ACCESS_KEY,
        data_dir=tmp_path / "data",
        redis_url="",
        database_url="",
    )


@pytest.fixture
def unreachable_endpoint() -> str:
    """URL of a port on 127.0.0.1 that was free a moment ago, so nothing listens on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _isolate_from_aws(env: pytest.MonkeyPatch, config_dir: Path) -> None:
    """Keep boto3 from reading this machine's AWS setup or asking the metadata service."""
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env.setenv("AWS_CONFIG_FILE", str(config_dir / "config"))
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config_dir / "credentials"))
    # Dummies for any client built without explicit credentials, so none goes looking.
    env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    env.setenv("AWS_DEFAULT_REGION", REGION)
    for name in _UNSET:
        env.delenv(name, raising=False)
