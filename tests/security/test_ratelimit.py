"""Rate limits: per key, per address, failed authentication, jobs in flight; 429 + Retry-After."""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

import pytest
from flask import Flask

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.errors import TooManyRequests, ValidationFailed
from mlserve.security.ratelimit import Limits, RateLimiter, SweptMemoryStorage, parse_limit
from mlserve.settings import Settings
from tests.api.test_api_datasets import assert_error
from tests.conftest import frame_csv, keyed_client, upload

REDIS_URL = os.environ.get("MLSERVE_TEST_REDIS_URL")


def _limited_app(settings: Settings, **limits: Any) -> Flask:
    return create_app(settings.model_copy(update=limits))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/second", "10 per 1 second"),
        ("5 per minute", "5 per 1 minute"),
        ("off", None),
        ("", None),
    ],
)
def test_parse_limit(text: str, expected: str | None) -> None:
    parsed = parse_limit(text, "rate_limit_per_key")
    assert (str(parsed) if parsed is not None else None) == expected


def test_parse_limit_refuses_nonsense() -> None:
    with pytest.raises(ValidationFailed, match="rate_limit_per_key: not a rate limit"):
        parse_limit("lots", "rate_limit_per_key")


def test_limiter_counts_per_key_and_per_address() -> None:
    limiter = RateLimiter(
        "memory://",
        Limits(per_key=parse_limit("3/minute", "k"), per_ip=None, auth_failures_per_ip=None),
    )
    for _ in range(3):
        limiter.check("key-a", "10.0.0.1")
    with pytest.raises(TooManyRequests, match="per key") as caught:
        limiter.check("key-a", "10.0.0.2")
    assert 0 < caught.value.details["retry_after_s"] <= 60
    limiter.check("key-b", "10.0.0.1")  # another key has its own count
    per_ip = RateLimiter(
        "memory://",
        Limits(per_key=None, per_ip=parse_limit("2/minute", "ip"), auth_failures_per_ip=None),
    )
    per_ip.check("key-a", "10.0.0.1")
    per_ip.check("key-b", "10.0.0.1")
    with pytest.raises(TooManyRequests, match="per ip"):
        per_ip.check("key-c", "10.0.0.1")
    per_ip.check("key-a", "10.0.0.9")


def test_http_429_with_retry_after_per_key(settings: Settings) -> None:
    app = _limited_app(settings, rate_limit_per_key="4/minute", rate_limit_per_ip="off")
    client = keyed_client(app)
    statuses = [client.get("/api/v1/models").status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    response = client.get("/api/v1/models")
    details = assert_error(response, 429, "too_many_requests")
    assert details["scope"] == "key"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # another key is not affected; /health is never limited
    assert keyed_client(app, "viewer").get("/api/v1/models").status_code == 200
    assert all(client.get("/health").status_code == 200 for _ in range(10))


def test_fast_lane_predictions_count_against_the_same_limit(
    settings: Settings, diabetes_frame: Any
) -> None:
    app = _limited_app(settings, rate_limit_per_key="6/minute", rate_limit_per_ip="off")
    client = keyed_client(app)
    dataset = upload(client, frame_csv(diabetes_frame), "d.csv").get_json()  # 1
    job = client.post(
        "/api/v1/training-jobs",
        json={
            "dataset_id": dataset["id"],
            "target": "target",
            "algorithm": "ridge",
            "model_name": "d",
            "cv_folds": 0,
        },
    )  # 2
    assert job.status_code == 202
    row = diabetes_frame.drop(columns="target").iloc[0].to_dict()
    lane = app.wsgi_app
    before = lane.answered  # type: ignore[attr-defined]
    statuses = [
        client.post("/api/v1/models/d/predict", json={"instances": [row]}).status_code
        for _ in range(6)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert lane.answered - before == 4  # type: ignore[attr-defined]


def test_failed_authentication_is_limited_per_address(settings: Settings) -> None:
    app = _limited_app(settings, rate_limit_auth_failures_per_ip="3/minute")
    anonymous = app.test_client()
    bad = {"Authorization": "Bearer mls_AAAAAAAA_" + "x" * 43}
    assert [anonymous.get("/api/v1/models", headers=bad).status_code for _ in range(3)] == [401] * 3
    assert_error(anonymous.get("/api/v1/models", headers=bad), 429, "too_many_requests")
    # the address is now blocked for anything but a valid key until the window ends
    assert_error(anonymous.get("/api/v1/models"), 429, "too_many_requests")
    assert keyed_client(app).get("/api/v1/models").status_code == 200


def test_jobs_in_flight_per_key(settings: Settings, diabetes_frame: Any) -> None:
    queued = settings.model_copy(update={"jobs_immediate": False, "max_jobs_in_flight_per_key": 2})
    app = create_app(queued)
    client = keyed_client(app)
    dataset = upload(client, frame_csv(diabetes_frame), "d.csv").get_json()
    body = {"dataset_id": dataset["id"], "target": "target", "algorithm": "ridge"}
    first = client.post("/api/v1/training-jobs", json={**body, "model_name": "a"})
    second = client.post("/api/v1/training-jobs", json={**body, "model_name": "b"})
    assert (first.status_code, second.status_code) == (202, 202)
    third = client.post("/api/v1/training-jobs", json={**body, "model_name": "c"})
    details = assert_error(third, 429, "too_many_requests")
    assert (details["limit"], details["in_flight"]) == (2, 2)
    assert third.headers["Retry-After"] == "5"
    # another key has its own allowance
    trainer = keyed_client(app, "trainer")
    assert (
        trainer.post("/api/v1/training-jobs", json={**body, "model_name": "d"}).status_code == 202
    )
    context_of(app).db.dispose()


@pytest.mark.skipif(not REDIS_URL, reason="MLSERVE_TEST_REDIS_URL is not set (no Redis server)")
def test_redis_storage_is_shared_by_two_apps(settings: Settings, tmp_path: Any) -> None:
    """Two service instances (own processes in production) share one Redis count."""
    assert REDIS_URL is not None
    limit = {
        "rate_limit_storage_url": REDIS_URL,
        "rate_limit_per_key": "5/minute",
        "rate_limit_per_ip": "off",
    }
    first = _limited_app(settings, **limit)
    client = keyed_client(first)
    second = create_app(settings.model_copy(update=limit))
    other = second.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = client.environ_base["HTTP_AUTHORIZATION"]
    statuses = [c.get("/api/v1/models").status_code for c in (client, other) * 4]
    assert statuses.count(200) == 5 and statuses.count(429) == 3
    assert statuses[-1] == 429  # keys are random per test: runs never share a count


def test_memory_storage_starts_one_sweeper_thread_not_one_per_hits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """limits' MemoryStorage started a threading.Timer every few hits (about 1 ms per
    request); mlserve's subclass sweeps on one thread, and windows still expire."""
    started: list[str] = []
    real_start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    limiter = RateLimiter(
        "memory://",
        Limits(per_key=parse_limit("3/second", "k"), per_ip=None, auth_failures_per_ip=None),
    )
    assert isinstance(limiter._storage, SweptMemoryStorage)
    monkeypatch.setattr(threading.Thread, "start", counted)
    for round_ in range(3):
        for _ in range(3):
            limiter.check("key-a", None)
        with pytest.raises(TooManyRequests):
            limiter.check("key-a", None)
        if round_ < 2:
            time.sleep(1.05)  # the next one-second window
    assert started == ["mlserve-rate-limit-sweep"]


def test_the_sweeper_frees_expired_windows_and_ends_with_its_storage() -> None:
    storage = SweptMemoryStorage(sweep_interval_s=0.05)
    storage.incr("k", expiry=0.01)
    assert storage.get("k") == 1
    sweeper = storage._sweeper
    assert sweeper is not None and sweeper.is_alive()
    deadline = time.monotonic() + 5
    while storage.storage and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not storage.storage and not storage.expirations  # swept, not only read as 0
    del storage
    gc.collect()  # the base class's cancelled timer holds a bound method: a cycle
    sweeper.join(5)
    assert not sweeper.is_alive()
