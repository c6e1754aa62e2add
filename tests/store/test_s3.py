"""The S3 artifact store (obstore) against a real S3 endpoint: moto_server on loopback."""

from __future__ import annotations

import io
import os
import threading
import time
from typing import Any

import obstore
import pandas as pd
import pytest
from obstore.store import S3Store as RawBucket

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.errors import Conflict, NotFound, ServiceUnavailable
from mlserve.settings import Settings
from mlserve.store import s3
from mlserve.store.artifacts import sha256_hex
from mlserve.store.location import open_store
from mlserve.store.s3 import S3Store
from tests.conftest import frame_csv, keyed_client, train, upload
from tests.e2e.relay import TcpRelay


def raw_keys(bucket: str) -> list[str]:
    """Every object of ``bucket``, listed directly (not through the store under test)."""
    raw = RawBucket(
        bucket, endpoint=os.environ["AWS_ENDPOINT_URL"], client_options={"allow_http": True}
    )
    return sorted(meta["path"] for batch in obstore.list(raw) for meta in batch)


def test_round_trip_with_digest_exists_and_delete(s3_bucket: str) -> None:
    store = open_store(f"s3://{s3_bucket}/mlserve")
    assert isinstance(store, S3Store)
    data = os.urandom(300_000)
    stored = store.put_bytes("models/job-1.skops", data)
    assert (stored.sha256, stored.size_bytes) == (sha256_hex(data), len(data))
    assert store.exists("models/job-1.skops") and not store.exists("models/job-2.skops")
    assert store.get_bytes("models/job-1.skops", stored.sha256) == data
    assert raw_keys(s3_bucket) == ["mlserve/models/job-1.skops"]
    store.delete("models/job-1.skops")
    store.delete("models/job-1.skops")  # idempotent
    assert not store.exists("models/job-1.skops")
    with pytest.raises(NotFound, match="missing from the store"):
        store.get_bytes("models/job-1.skops")


@pytest.mark.parametrize(
    ("size", "parts"),
    [(1234, 0), (s3.PART_BYTES, 0), (2 * s3.PART_BYTES + 77, 3)],
)
def test_put_file_sends_the_whole_file_with_its_digest(
    s3_bucket: str, size: int, parts: int
) -> None:
    store = S3Store(f"s3://{s3_bucket}")
    data = os.urandom(size)
    file = io.BytesIO(data)
    file.seek(size // 3)  # wherever the writer left it
    stored = store.put_file("datasets/d.parquet", file)
    assert (stored.sha256, stored.size_bytes) == (sha256_hex(data), len(data))
    assert store.get_bytes("datasets/d.parquet", stored.sha256) == data
    # A multipart upload's ETag ends in "-<parts>"; one PutObject's does not.
    e_tag = str(obstore.head(store._store, "datasets/d.parquet")["e_tag"]).strip('"')
    assert e_tag.endswith(f"-{parts}") if parts else "-" not in e_tag


def test_modified_object_fails_its_sha256_check(s3_bucket: str) -> None:
    store = S3Store(f"s3://{s3_bucket}")
    stored = store.put_bytes("datasets/d.parquet", b"the original bytes")
    S3Store(f"s3://{s3_bucket}").put_bytes("datasets/d.parquet", b"the original bytez")
    with pytest.raises(Conflict, match="sha256 check"):
        store.get_bytes("datasets/d.parquet", stored.sha256)


def test_prefixes_keep_stores_apart(s3_bucket: str) -> None:
    one, two = S3Store(f"s3://{s3_bucket}/one"), S3Store(f"s3://{s3_bucket}/two")
    one.put_bytes("models/m.skops", b"1")
    assert not two.exists("models/m.skops")
    assert two.sweep_temporaries(0) == 0


@pytest.mark.parametrize("key", ["../escape.skops", "/absolute.skops", "models/UPPER.skops"])
def test_keys_outside_the_pattern_are_refused(s3_bucket: str, key: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        S3Store(f"s3://{s3_bucket}").put_bytes(key, b"x")


def test_url_without_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="names no bucket"):
        open_store("s3://")


def test_interrupted_write_leaves_nothing(
    s3_bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    relay = TcpRelay(host, int(port))
    relay.restore()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{relay.port}")
    store = S3Store(f"s3://{s3_bucket}/cut", retry_timeout_s=1, max_retries=0)
    outcome: list[BaseException] = []

    def write() -> None:
        try:
            store.put_bytes("datasets/big.parquet", os.urandom(64 << 20))
        except BaseException as exc:
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 60
    while relay.forwarded_bytes < 1 << 20:  # the upload is under way
        assert time.monotonic() < deadline and writer.is_alive(), "the upload never started"
        time.sleep(0.01)
    relay.cut()
    writer.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], ServiceUnavailable), outcome
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    assert not S3Store(f"s3://{s3_bucket}/cut").exists("datasets/big.parquet")
    assert raw_keys(s3_bucket) == []


def test_service_keeps_datasets_and_models_in_the_bucket(
    s3_bucket: str, settings: Settings, diabetes_frame: pd.DataFrame
) -> None:
    app = create_app(settings.model_copy(update={"artifact_root": f"s3://{s3_bucket}/svc"}))
    try:
        client = keyed_client(app)
        dataset = upload(client, frame_csv(diabetes_frame), "d.csv").get_json()
        job: dict[str, Any] = train(
            client, dataset["id"], target="target", algorithm="ridge", model_name="d"
        ).get_json()
        assert job["status"] == "succeeded", job
        row = diabetes_frame.drop(columns="target").iloc[0].to_dict()
        answer = client.post("/api/v1/models/d/predict", json={"instances": [row]})
        assert answer.status_code == 200, answer.get_json()
    finally:
        context_of(app).db.dispose()
    keys = raw_keys(s3_bucket)
    assert f"svc/datasets/{dataset['id']}.parquet" in keys
    assert any(key.startswith(f"svc/models/{job['id']}") for key in keys), keys
