"""Storage in an S3-compatible bucket (AWS S3, Ceph RGW, SeaweedFS, Garage, MinIO...)."""

from __future__ import annotations

import logging
from pathlib import Path

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from transcoder.errors import StorageError, TransientStorageError
from transcoder.settings import Settings

log = logging.getLogger("transcoder.storage")

_TRANSIENT_CODES = {
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}


class S3Storage:
    """Objects live in one bucket, under an optional prefix."""

    def __init__(self, client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key.get_secret_value() or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10),
        )
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, local: Path, key: str, content_type: str = "application/octet-stream") -> int:
        if not Path(local).is_file():
            raise StorageError(f"could not upload {key}: {local} is not a file")
        with _translated(f"upload {key}"):
            self.client.upload_file(
                str(local), self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
            )
        return Path(local).stat().st_size

    def fetch(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _translated(f"download {key}"):
            self.client.download_file(self.bucket, self._key(key), str(dest))
        return dest

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise _storage_error(f"check {key}", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(f"check {key}", exc) from exc
        return True

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        with _translated(f"delete {prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                    count += len(keys)
        return count

    def url(self, key: str, expires: int = 3600) -> str:
        with _translated(f"sign {key}"):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires,
            )
        return url

    def check(self) -> None:
        with _translated(f"reach bucket {self.bucket}"):
            self.client.head_bucket(Bucket=self.bucket)


class _translated:
    """Turn botocore failures into StorageError (or its transient kind)."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and isinstance(exc, BotoCoreError | ClientError | Boto3Error):
            raise _storage_error(self.action, exc) from exc


def _storage_error(action: str, exc: Exception) -> StorageError:
    # boto3's transfer manager wraps the real failure (S3UploadFailedError); judge that one.
    if isinstance(exc, Boto3Error) and isinstance(exc.__context__, BotoCoreError | ClientError):
        exc = exc.__context__
    if isinstance(exc, ConnectionError | ReadTimeoutError):
        return TransientStorageError(f"could not {action}: storage unreachable ({exc})")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _TRANSIENT_CODES:
            return TransientStorageError(f"could not {action}: {code}")
        return StorageError(f"could not {action}: {code or exc}")
    return StorageError(f"could not {action}: {exc}")
