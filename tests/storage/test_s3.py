"""S3Storage against a real S3 server (moto's), over HTTP on 127.0.0.1."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from transcoder.errors import StorageError, TransientStorageError
from transcoder.settings import Settings
from transcoder.storage import make_storage, rendition_key, source_key, video_prefix
from transcoder.storage.s3 import S3Storage


@pytest.fixture
def storage(s3_settings: Settings) -> S3Storage:
    built = make_storage(s3_settings)
    assert isinstance(built, S3Storage)
    return built


@pytest.fixture
def upload(tmp_path: Path):
    """Write a local file with the given bytes, ready to be put."""

    def write(data: bytes, name: str = "upload.bin") -> Path:
        path = tmp_path / "uploads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


def bucket_keys(s3_client, bucket: str) -> list[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_put_returns_the_size_and_fetch_downloads_the_bytes(storage, upload, tmp_path) -> None:
    key = rendition_key("abc", "240p-h264.mp4")

    assert storage.put(upload(b"rendition bytes"), key, "video/mp4") == 15

    dest = tmp_path / "work" / "copy.mp4"
    assert storage.fetch(key, dest) == dest
    assert dest.read_bytes() == b"rendition bytes"


def test_put_records_the_content_type(storage, upload, s3_client, s3_bucket) -> None:
    key = rendition_key("abc", "240p-vp8.webm")

    storage.put(upload(b"webm"), key, "video/webm")

    assert s3_client.head_object(Bucket=s3_bucket, Key=key)["ContentType"] == "video/webm"


def test_writing_a_key_twice_keeps_one_object_with_the_second_content(
    storage, upload, s3_client, s3_bucket
) -> None:
    key = rendition_key("abc", "poster.jpg")

    storage.put(upload(b"first, longer content", "one"), key)
    storage.put(upload(b"second", "two"), key)

    assert bucket_keys(s3_client, s3_bucket) == [key]
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"second"


def test_exists_only_once_put(storage, upload) -> None:
    key = rendition_key("abc", "240p-vp8.webm")
    assert not storage.exists(key)

    storage.put(upload(b"x"), key)

    assert storage.exists(key)


def test_delete_prefix_removes_one_video_and_counts_its_objects(
    storage, upload, s3_client, s3_bucket
) -> None:
    for video_id in ("abc", "abcd"):
        storage.put(upload(b"a"), source_key(video_id))
        storage.put(upload(b"b"), rendition_key(video_id, "240p-h264.mp4"))

    assert storage.delete_prefix(video_prefix("abc")) == 2

    assert bucket_keys(s3_client, s3_bucket) == [
        rendition_key("abcd", "240p-h264.mp4"),
        source_key("abcd"),
    ]


def test_delete_prefix_of_nothing_deletes_nothing(storage) -> None:
    assert storage.delete_prefix(video_prefix("missing")) == 0


def test_prefix_setting_keeps_every_object_under_it(
    s3_settings, upload, s3_client, s3_bucket, tmp_path
) -> None:
    outside = source_key("abc")
    s3_client.put_object(Bucket=s3_bucket, Key=outside, Body=b"not ours")
    storage = make_storage(s3_settings.model_copy(update={"s3_prefix": "/tenant/farm-1/"}))

    storage.put(upload(b"ours"), source_key("abc"))

    inside = f"tenant/farm-1/{source_key('abc')}"
    assert bucket_keys(s3_client, s3_bucket) == [inside, outside]
    assert storage.fetch(source_key("abc"), tmp_path / "copy").read_bytes() == b"ours"
    with urllib.request.urlopen(storage.url(source_key("abc"))) as response:
        assert response.read() == b"ours"

    assert storage.delete_prefix(video_prefix("abc")) == 1

    assert not storage.exists(source_key("abc"))
    assert bucket_keys(s3_client, s3_bucket) == [outside]


def test_fetch_of_a_missing_object_raises_storage_error(storage, tmp_path) -> None:
    with pytest.raises(StorageError) as raised:
        storage.fetch(rendition_key("abc", "missing.mp4"), tmp_path / "dest")

    assert not isinstance(raised.value, BotoCoreError | ClientError)
    assert not raised.value.transient
    assert isinstance(raised.value.__cause__, ClientError)


def test_presigned_url_downloads_the_object_with_a_plain_get(storage, upload, s3_endpoint) -> None:
    key = rendition_key("abc", "240p-h264.mp4")
    storage.put(upload(b"signed bytes"), key, "video/mp4")

    url = storage.url(key, expires=60)

    assert url.startswith(f"{s3_endpoint}/")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"signed bytes"
        assert response.headers["Content-Type"] == "video/mp4"


def test_check_passes_on_an_existing_bucket(storage) -> None:
    storage.check()


def test_check_raises_storage_error_for_a_missing_bucket(s3_settings) -> None:
    storage = make_storage(s3_settings.model_copy(update={"s3_bucket": "no-such-bucket"}))

    with pytest.raises(StorageError) as raised:
        storage.check()

    assert not raised.value.transient
    assert isinstance(raised.value.__cause__, ClientError)


# An unreachable endpoint. A client that tries once shows how each operation translates the
# connection error; one test goes through from_settings to show its own retries end quickly.

OPERATIONS = {
    "put": lambda storage, path: storage.put(path, source_key("abc")),
    "fetch": lambda storage, path: storage.fetch(source_key("abc"), path.with_name("dest")),
    "exists": lambda storage, path: storage.exists(source_key("abc")),
    "delete_prefix": lambda storage, path: storage.delete_prefix(video_prefix("abc")),
    "check": lambda storage, path: storage.check(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_unreachable_endpoint_raises_transient_storage_error(
    operation, unreachable_endpoint, upload
) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=unreachable_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-access-key",
        aws_secret_access_key="test-secret-key",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    storage = S3Storage(client, "any-bucket")

    with pytest.raises(TransientStorageError, match="storage unreachable") as raised:
        OPERATIONS[operation](storage, upload(b"x"))

    assert raised.value.transient


def test_from_settings_gives_up_on_an_unreachable_endpoint_within_seconds(
    s3_settings, unreachable_endpoint
) -> None:
    storage = make_storage(s3_settings.model_copy(update={"s3_endpoint_url": unreachable_endpoint}))
    started = time.monotonic()

    with pytest.raises(TransientStorageError):
        storage.check()

    # Connection refused is immediate; the rest is botocore's short non-throttling backoff.
    assert time.monotonic() - started < 8
