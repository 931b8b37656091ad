"""LocalStorage: objects as files under one directory, which no key may leave."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from transcoder.errors import StorageError
from transcoder.settings import Settings
from transcoder.storage import LocalStorage, make_storage, rendition_key, video_prefix

ESCAPING_KEYS = ["", "..", "../outside", "videos/../../outside", "/tmp/outside"]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def upload(tmp_path: Path):
    """Write a local file with the given bytes, ready to be put."""

    def write(data: bytes, name: str = "upload.bin") -> Path:
        path = tmp_path / "uploads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


def test_put_returns_the_size_and_fetch_gives_back_the_bytes(storage, upload, tmp_path) -> None:
    key = rendition_key("abc", "240p-h264.mp4")

    assert storage.put(upload(b"rendition bytes"), key, "video/mp4") == 15

    fetched = storage.fetch(key, tmp_path / "work" / "copy.mp4")
    assert fetched.read_bytes() == b"rendition bytes"
    assert (storage.root / key).read_bytes() == b"rendition bytes"


def test_writing_a_key_twice_keeps_one_file_with_the_second_content(storage, upload) -> None:
    key = rendition_key("abc", "poster.jpg")

    storage.put(upload(b"first, longer content", "one"), key)
    storage.put(upload(b"second", "two"), key)

    assert storage.fetch(key, Path("unused")).read_bytes() == b"second"
    folder = storage.root / video_prefix("abc")
    assert [p.name for p in folder.iterdir()] == ["poster.jpg"]  # no temporary file left over


def test_exists_only_once_put(storage, upload) -> None:
    key = rendition_key("abc", "240p-vp8.webm")
    assert not storage.exists(key)

    storage.put(upload(b"x"), key)

    assert storage.exists(key)
    assert not storage.exists(video_prefix("abc").rstrip("/"))  # a folder is not an object


def test_delete_prefix_removes_one_video_and_counts_its_objects(storage, upload) -> None:
    for video_id in ("abc", "abcd"):
        storage.put(upload(b"a"), rendition_key(video_id, "source"))
        storage.put(upload(b"b"), rendition_key(video_id, "240p-h264.mp4"))

    assert storage.delete_prefix(video_prefix("abc")) == 2

    assert not storage.exists(rendition_key("abc", "source"))
    assert not (storage.root / video_prefix("abc")).exists()
    assert storage.exists(rendition_key("abcd", "source"))
    assert storage.exists(rendition_key("abcd", "240p-h264.mp4"))


def test_delete_prefix_of_nothing_deletes_nothing(storage) -> None:
    assert storage.delete_prefix(video_prefix("missing")) == 0


def test_url_is_a_file_url_that_reads_the_object(storage, upload) -> None:
    key = rendition_key("abc", "thumb-160.jpg")
    storage.put(upload(b"jpeg bytes"), key)

    url = storage.url(key)

    assert url.startswith("file://")
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"jpeg bytes"


def test_fetch_of_a_missing_object_raises_storage_error(storage, tmp_path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        storage.fetch(rendition_key("abc", "missing.mp4"), tmp_path / "dest")


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_keys_escaping_the_root_are_refused(storage, upload, tmp_path, key) -> None:
    local = upload(b"x")

    with pytest.raises(StorageError, match="escapes the storage directory"):
        storage.put(local, key)
    for refused in (storage.exists, storage.url, storage.delete_prefix):
        with pytest.raises(StorageError, match="escapes the storage directory"):
            refused(key)
    with pytest.raises(StorageError, match="escapes the storage directory"):
        storage.fetch(key, tmp_path / "dest")

    assert not (tmp_path / "outside").exists()


def test_a_symlink_out_of_the_root_is_refused(storage, upload, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    storage.root.mkdir(parents=True)
    (storage.root / "videos").symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(StorageError, match="escapes the storage directory"):
        storage.put(upload(b"x"), rendition_key("abc", "source"))

    assert list(elsewhere.iterdir()) == []


def test_check_creates_a_missing_root(storage) -> None:
    storage.check()

    assert storage.root.is_dir()
    assert list(storage.root.iterdir()) == []


def test_check_raises_storage_error_when_the_root_is_a_file(tmp_path) -> None:
    root = tmp_path / "not-a-directory"
    root.write_bytes(b"")

    with pytest.raises(StorageError, match="not writable"):
        LocalStorage(root).check()


def test_make_storage_uses_the_storage_dir_of_local_settings(settings: Settings) -> None:
    storage = make_storage(settings)

    assert isinstance(storage, LocalStorage)
    assert storage.root == settings.resolved_storage_dir
