"""Artifact store: dataset files and model artifacts behind one small interface.

Keys are server-generated (``datasets/<id>.parquet``, ``models/<job id>.skops``)
and checked against :data:`KEY_PATTERN`, so no client text can name a path
outside the store's root. Writes are atomic: a temporary file in the same folder,
``fsync``, then ``os.replace``; a crash leaves either the old state or the new
one, and stray temporaries are swept by :meth:`LocalStore.sweep_temporaries`.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from mlserve.errors import Conflict, NotFound

KEY_PATTERN = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*\.[a-z0-9]+$")
TEMP_PREFIX = ".tmp-"
COPY_BLOCK_BYTES = 1024 * 1024  # read size when a file is copied into the store
TEMP_MAX_AGE_S = 3600.0  # a write in progress touches its temporary far more often


@dataclass(frozen=True, kw_only=True)
class StoredArtifact:
    """Where an artifact was written, with its digest and size in bytes."""

    key: str
    sha256: str
    size_bytes: int


class ArtifactStore(Protocol):
    """What every artifact store does."""

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        """Write ``data`` under ``key`` atomically."""
        ...

    def put_file(self, key: str, file: IO[bytes]) -> StoredArtifact:
        """Write the whole of the seekable ``file`` (from its start) under ``key`` atomically."""
        ...

    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        """Read the artifact under ``key``, checking its sha256 if given."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...

    def exists(self, key: str) -> bool:
        """Return whether ``key`` is present."""
        ...

    def sweep_temporaries(self, min_age_s: float = ...) -> int:
        """Delete what interrupted writes left behind; return how many."""
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid artifact key.

    Raises
    ------
    ValueError
        If ``key`` has characters outside ``[a-z0-9_-/.]``, an empty or dotted
        segment, or is absolute.
    """
    if not KEY_PATTERN.fullmatch(key):
        raise ValueError(f"invalid artifact key {key!r}")
    return key


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 digest of ``data`` (FIPS 180-4)."""
    return hashlib.sha256(data).hexdigest()


def file_blocks(file: IO[bytes], start: int = 0) -> Iterator[bytes]:
    """The seekable ``file`` from byte ``start`` (its start by default) to its end, in
    blocks of 1 MiB."""
    file.seek(start)
    while block := file.read(COPY_BLOCK_BYTES):
        yield block


def file_sha256(file: IO[bytes]) -> tuple[str, int]:
    """Hex SHA-256 digest (FIPS 180-4) and size in bytes of the seekable ``file``."""
    digest = hashlib.sha256()
    size = 0
    for block in file_blocks(file):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def missing(key: str) -> NotFound:
    """The error of an artifact absent from its store."""
    return NotFound("artifact is missing from the store", {"artifact": key})


def checked(key: str, data: bytes, expected_sha256: str | None) -> bytes:
    """``data`` read under ``key``, once its SHA-256 is ``expected_sha256`` (if given).

    Raises
    ------
    Conflict
        The digest differs (the artifact was modified or truncated).
    """
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise Conflict("artifact failed its sha256 check (corrupt or modified)", {"artifact": key})
    return data


class LocalStore:
    """Artifact store on a local (or mounted) folder.

    Parameters
    ----------
    root : str or Path
        Folder that holds every artifact; created if missing.
    file_mode : int
        Permission bits of the files written (``0o600``: the writing user only;
        ``0o640`` lets machines of one group read them, on a shared NFS folder).
    """

    def __init__(self, root: str | Path, file_mode: int = 0o600) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.file_mode = file_mode

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"invalid artifact key {key!r}")
        return path

    def put_bytes(self, key: str, data: bytes) -> StoredArtifact:
        """Write ``data`` under ``key`` atomically (temp file, fsync, rename).

        Raises
        ------
        OSError
            If the disk is full or not writable; no partial file is left.
        """
        return self._write(key, [data])

    def put_file(self, key: str, file: IO[bytes]) -> StoredArtifact:
        """Copy the seekable ``file`` under ``key`` atomically, 1 MiB at a time (temp file,
        fsync, rename); never held whole in memory.

        Raises
        ------
        OSError
            If the disk is full or not writable; no partial file is left.
        """
        return self._write(key, file_blocks(file))

    def _write(self, key: str, blocks: Iterable[bytes]) -> StoredArtifact:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Named after the key, so cleaning up after a writer that died (see
        # delete) also removes its half-written temporary.
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
        digest = hashlib.sha256()
        size = 0
        try:
            os.fchmod(fd, self.file_mode)  # mkstemp makes 0600 whatever the umask
            with os.fdopen(fd, "wb") as handle:
                for block in blocks:
                    handle.write(block)
                    digest.update(block)
                    size += len(block)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredArtifact(key=key, sha256=digest.hexdigest(), size_bytes=size)

    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        """Read ``key``; verify its SHA-256 when ``expected_sha256`` is given.

        Raises
        ------
        NotFound
            If the artifact is missing.
        Conflict
            If its digest differs from ``expected_sha256`` (tampered or truncated).
        """
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise missing(key) from exc
        return checked(key, data, expected_sha256)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present, and any temporary a dead writer left for it."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        for tmp in path.parent.glob(f"{TEMP_PREFIX}{path.name}.*"):
            tmp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        """Return whether ``key`` is present."""
        return self._path(key).is_file()

    def sweep_temporaries(self, min_age_s: float = TEMP_MAX_AGE_S) -> int:
        """Delete temporary files left by interrupted writes; return how many.

        Only temporaries untouched for ``min_age_s`` seconds go: another process
        may be writing the younger ones right now.
        """
        removed = 0
        cutoff = time.time() - min_age_s
        for tmp in self.root.rglob(f"{TEMP_PREFIX}*"):
            try:
                if tmp.stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:  # renamed into place meanwhile
                continue
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed
