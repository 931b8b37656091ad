"""Storage in a local directory (the embedded default, or a volume shared by the workers)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from transcoder.errors import StorageError


class LocalStorage:
    """Objects are files under `root`, named by their key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"key escapes the storage directory: {key!r}")
        return path

    def put(self, local: Path, key: str, content_type: str = "application/octet-stream") -> int:
        target = self.path(key)
        tmp = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copy to a temporary name and rename, so a reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(fd)
            shutil.copyfile(local, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            if tmp:
                Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"could not store {key}: {exc.strerror}") from exc
        return target.stat().st_size

    def fetch(self, key: str, dest: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise StorageError(f"object {key} does not exist")
        return path

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix.rstrip("/"))
        if not folder.exists():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return count

    def url(self, key: str, expires: int = 3600) -> str:
        return self.path(key).as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".check-"):
                pass
        except OSError as exc:
            raise StorageError(f"storage directory {self.root} is not writable") from exc
