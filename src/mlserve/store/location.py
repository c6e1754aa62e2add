"""Choosing the artifact store from ``MLSERVE_ARTIFACT_ROOT``: a folder or an S3 bucket."""

from __future__ import annotations

from urllib.parse import urlparse

from mlserve.store.artifacts import ArtifactStore, LocalStore
from mlserve.store.s3 import S3Store


def open_store(uri: str, file_mode: int = 0o600) -> ArtifactStore:
    """Return the artifact store for ``uri``: a folder path or ``file://`` URI
    (:class:`~mlserve.store.artifacts.LocalStore`, writing files with permission bits
    ``file_mode``), or ``s3://bucket/prefix`` (:class:`~mlserve.store.s3.S3Store`,
    which needs the ``s3`` extra).

    Raises
    ------
    ValueError
        For any other scheme, or an ``s3://`` URL without a bucket.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme else uri, file_mode=file_mode)
    if parsed.scheme == "s3":
        return S3Store(uri)
    raise ValueError(f"unsupported artifact store scheme {parsed.scheme!r}: use a path or s3://")
