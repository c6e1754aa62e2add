"""Unit tests for mlserve.store.artifacts: keys, atomic writes, digests, sweeping, open_store."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from mlserve.errors import Conflict, NotFound
from mlserve.settings import Settings
from mlserve.store import artifacts as storage
from mlserve.store.artifacts import (
    TEMP_PREFIX,
    LocalStore,
    StoredArtifact,
    check_key,
    sha256_hex,
)
from mlserve.store.location import open_store


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "artifacts")


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- keys and digests


@pytest.mark.parametrize(
    "key",
    [
        "a.txt",
        "datasets/0123abcd.parquet",
        "models/job_1-x.skops",
        "a/b/c/d.bin",
        "x.y2",
    ],
)
def test_check_key_valid_is_returned(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "../x.bin",
        "/etc/passwd",
        "a/../../b.txt",
        "A.txt",
        "x",
        "",
        "./a.txt",
        "a//b.txt",
        "a/b/",
        "a.b.c",
        ".hidden.txt",
        "a b.txt",
        "a\\b.txt",
        "datasets/x.parquet\n",
        "a.TXT",
        "é.txt",
    ],
)
def test_check_key_invalid_raises_value_error(key: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        check_key(key)


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ],
)
def test_sha256_hex_known_vectors(data: bytes, digest: str) -> None:
    assert sha256_hex(data) == digest


# --------------------------------------------------------------------------- put / get


def test_local_store_creates_root(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    store = LocalStore(root)
    assert root.is_dir()
    assert store.root == root.resolve()


def test_local_store_put_then_get_roundtrip(store: LocalStore) -> None:
    data = os.urandom(4096)
    stored = store.put_bytes("datasets/abc.parquet", data)
    assert stored == StoredArtifact(
        key="datasets/abc.parquet",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=4096,
    )
    assert (store.root / "datasets" / "abc.parquet").read_bytes() == data
    assert store.get_bytes("datasets/abc.parquet") == data
    assert store.get_bytes("datasets/abc.parquet", expected_sha256=stored.sha256) == data
    assert store.exists("datasets/abc.parquet")


def test_local_store_put_empty_bytes(store: LocalStore) -> None:
    stored = store.put_bytes("empty.bin", b"")
    assert stored.size_bytes == 0
    assert store.get_bytes("empty.bin", expected_sha256=sha256_hex(b"")) == b""


def test_local_store_put_overwrites_existing_key(store: LocalStore) -> None:
    store.put_bytes("models/m.skops", b"old")
    stored = store.put_bytes("models/m.skops", b"new content")
    assert store.get_bytes("models/m.skops") == b"new content"
    assert stored.size_bytes == len(b"new content")
    assert _files_under(store.root) == ["models/m.skops"]


def test_local_store_put_leaves_no_temporaries(store: LocalStore) -> None:
    for i in range(3):
        store.put_bytes(f"d/f{i}.bin", bytes([i]) * 10)
    assert _files_under(store.root) == ["d/f0.bin", "d/f1.bin", "d/f2.bin"]
    assert not list(store.root.rglob(f"{TEMP_PREFIX}*"))


def test_local_store_get_tampered_file_is_conflict(store: LocalStore) -> None:
    stored = store.put_bytes("datasets/d.parquet", b"original bytes")
    (store.root / "datasets" / "d.parquet").write_bytes(b"original bytez")
    with pytest.raises(Conflict, match="sha256 check") as info:
        store.get_bytes("datasets/d.parquet", expected_sha256=stored.sha256)
    assert info.value.details == {"artifact": "datasets/d.parquet"}
    assert info.value.status_code == 409


def test_local_store_get_truncated_file_is_conflict(store: LocalStore) -> None:
    stored = store.put_bytes("m.bin", b"0123456789")
    path = store.root / "m.bin"
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(Conflict):
        store.get_bytes("m.bin", expected_sha256=stored.sha256)


def test_local_store_get_without_expected_digest_skips_check(store: LocalStore) -> None:
    store.put_bytes("m.bin", b"one")
    (store.root / "m.bin").write_bytes(b"two")
    assert store.get_bytes("m.bin") == b"two"


def test_local_store_get_missing_is_not_found(store: LocalStore) -> None:
    with pytest.raises(NotFound, match="missing from the store") as info:
        store.get_bytes("models/nothing.skops")
    assert info.value.details == {"artifact": "models/nothing.skops"}
    assert info.value.status_code == 404


@pytest.mark.parametrize("key", ["../x.bin", "/etc/passwd", "a/../../b.txt", "A.txt", "x"])
@pytest.mark.parametrize("operation", ["put", "get", "delete", "exists"])
def test_local_store_invalid_key_raises_value_error(
    store: LocalStore, key: str, operation: str
) -> None:
    calls = {
        "put": lambda: store.put_bytes(key, b"data"),
        "get": lambda: store.get_bytes(key),
        "delete": lambda: store.delete(key),
        "exists": lambda: store.exists(key),
    }
    with pytest.raises(ValueError, match="invalid artifact key"):
        calls[operation]()
    assert _files_under(store.root.parent) == []


def test_local_store_symlink_escaping_root_is_rejected(store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="invalid artifact key"):
        store.put_bytes("evil/x.bin", b"data")
    assert list(outside.iterdir()) == []


def test_local_store_delete_and_exists(store: LocalStore) -> None:
    store.put_bytes("a/b.bin", b"x")
    assert store.exists("a/b.bin")
    store.delete("a/b.bin")
    assert not store.exists("a/b.bin")
    # Deleting a missing key is not an error.
    store.delete("a/b.bin")
    store.delete("never/written.bin")
    assert not store.exists("never/written.bin")


def test_local_store_exists_is_false_for_directory(store: LocalStore) -> None:
    (store.root / "dir.d").mkdir()
    assert not store.exists("dir.d")


# --------------------------------------------------------------------------- failures


def test_local_store_put_failure_on_replace_leaves_no_partial_file(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("models/m.skops", b"previous version")

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left on device") as info:
        store.put_bytes("models/m.skops", b"new version that never lands")
    assert info.value.errno == 28
    monkeypatch.undo()
    assert _files_under(store.root) == ["models/m.skops"]
    assert store.get_bytes("models/m.skops") == b"previous version"


def test_local_store_put_failure_on_new_key_leaves_nothing(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        store.put_bytes("datasets/new.parquet", b"x" * 1000)
    monkeypatch.undo()
    assert _files_under(store.root) == []
    assert not store.exists("datasets/new.parquet")


def test_local_store_put_interrupted_removes_temporary(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put_bytes("a.bin", b"data")
    monkeypatch.undo()
    assert _files_under(store.root) == []


def test_local_store_sweep_temporaries_removes_only_temporaries(store: LocalStore) -> None:
    store.put_bytes("datasets/keep.parquet", b"keep")
    (store.root / f"{TEMP_PREFIX}abc").write_bytes(b"partial")
    (store.root / "datasets" / f"{TEMP_PREFIX}xyz").write_bytes(b"partial")
    (store.root / "models").mkdir()
    (store.root / "models" / f"{TEMP_PREFIX}123").write_bytes(b"")
    fresh = store.root / "models" / f"{TEMP_PREFIX}being-written"
    fresh.write_bytes(b"in progress")
    hour_ago = time.time() - 3700
    for path in store.root.rglob(f"{TEMP_PREFIX}*"):
        if path != fresh:
            os.utime(path, (hour_ago, hour_ago))
    assert store.sweep_temporaries() == 3  # an hour untouched: left by a dead writer
    assert _files_under(store.root) == ["datasets/keep.parquet", f"models/{fresh.name}"]
    assert store.sweep_temporaries(min_age_s=0) == 1
    assert store.sweep_temporaries() == 0


def test_local_store_delete_removes_a_dead_writers_temporary(store: LocalStore) -> None:
    store.put_bytes("models/job.onnx", b"model")
    (store.root / "models" / f"{TEMP_PREFIX}job.onnx.x1y2").write_bytes(b"half")
    (store.root / "models" / f"{TEMP_PREFIX}other.onnx.z3").write_bytes(b"half")
    store.delete("models/job.onnx")
    assert _files_under(store.root) == [f"models/{TEMP_PREFIX}other.onnx.z3"]


# --------------------------------------------------------------------------- open_store


def test_open_store_plain_path(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "plain"))
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "plain").resolve()
    assert store.root.is_dir()


def test_open_store_file_uri(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'uri'}")
    assert store.root == (tmp_path / "uri").resolve()
    store.put_bytes("a.bin", b"x")
    assert (tmp_path / "uri" / "a.bin").read_bytes() == b"x"


def test_open_store_relative_path_resolves_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("data/artifacts")
    assert store.root == (tmp_path / "data" / "artifacts").resolve()


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [("gs://bucket", "gs"), ("http://host/x", "http")],
)
def test_open_store_unsupported_scheme_raises(uri: str, scheme: str) -> None:
    with pytest.raises(ValueError, match=f"unsupported artifact store scheme '{scheme}'"):
        open_store(uri)


@pytest.mark.parametrize(("mode", "bits"), [(None, 0o600), ("0640", 0o640), ("660", 0o660)])
def test_artifact_files_get_the_configured_mode(
    tmp_path: Path, mode: str | None, bits: int
) -> None:
    """0600 by default; a group-readable mode for machines sharing an NFS folder as
    different users (issue 15). The umask does not widen or narrow it."""
    settings = Settings(home=tmp_path, **({"artifact_file_mode": mode} if mode else {}))
    store = open_store(str(tmp_path / "artifacts"), settings.artifact_file_mode_bits)
    previous = os.umask(0o077)
    try:
        store.put_bytes("models/m.onnx", b"graph")
    finally:
        os.umask(previous)
    assert (tmp_path / "artifacts" / "models" / "m.onnx").stat().st_mode & 0o777 == bits


@pytest.mark.parametrize("mode", ["0644x", "0400", "0666", "0700", "0602", "9"])
def test_unsafe_or_malformed_file_modes_are_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(ValueError, match="file mode"):
        Settings(home=tmp_path, artifact_file_mode=mode)


@pytest.mark.parametrize(
    "size", [0, 1, storage.COPY_BLOCK_BYTES, 2 * storage.COPY_BLOCK_BYTES + 17]
)
def test_local_store_put_file_copies_the_whole_file_from_its_start(
    store: LocalStore, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    with source.open("rb") as file:
        file.seek(size // 2)  # wherever the writer left it
        stored = store.put_file("datasets/d.parquet", file)
    assert (stored.sha256, stored.size_bytes) == (hashlib.sha256(data).hexdigest(), size)
    assert store.get_bytes("datasets/d.parquet", stored.sha256) == data
    with source.open("rb") as file:
        assert storage.file_sha256(file) == (stored.sha256, size)


def test_local_store_put_file_failing_leaves_the_previous_file(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("datasets/d.parquet", b"previous")
    source = tmp_path / "upload.bin"
    source.write_bytes(b"y" * (3 * storage.COPY_BLOCK_BYTES))

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)
    with source.open("rb") as file, pytest.raises(OSError, match="No space left on device"):
        store.put_file("datasets/d.parquet", file)
    monkeypatch.undo()
    assert _files_under(store.root) == ["datasets/d.parquet"]
    assert store.get_bytes("datasets/d.parquet") == b"previous"
