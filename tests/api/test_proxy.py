"""Clients behind trusted proxies: ``MLSERVE_TRUSTED_PROXIES`` in the Flask path and the
fast lane, for rate limits, the failed-authentication lockout and the audit log."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from pydantic import ValidationError

from mlserve import create_app
from mlserve.api.current import context_of
from mlserve.api.proxy import TrustedNetworks, parse_trusted_proxies
from mlserve.security import audit
from mlserve.security import keys as auth
from mlserve.settings import Settings
from tests.conftest import frame_csv, train, upload

PROXY = "10.0.0.2"
ALICE, BOB = "203.0.113.7", "198.51.100.9"
FORGED = "mls_AAAAAAAA_" + "x" * 43


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("2", 2),
        ("10.0.0.0/8", ["10.0.0.0/8"]),
        ("127.0.0.1, ::1", ["127.0.0.1/32", "::1/128"]),
    ],
)
def test_parse_trusted_proxies(text: str, expected: Any) -> None:
    parsed = parse_trusted_proxies(text)
    if isinstance(expected, int):
        assert parsed == expected
    else:
        assert parsed == [ipaddress.ip_network(n) for n in expected]


@pytest.mark.parametrize("text", ["proxy.local", "11", "10.0.0.0/33", "1,2"])
def test_malformed_trusted_proxies_are_refused(text: str) -> None:
    with pytest.raises((ValidationError, ValueError)):
        Settings(trusted_proxies=text)
        parse_trusted_proxies(text)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        (PROXY, ALICE, ALICE),  # one trusted proxy
        (PROXY, f"{ALICE}, 10.1.2.3", ALICE),  # two trusted proxies
        (PROXY, f"6.6.6.6, {ALICE}", ALICE),  # what the client forged is left of its address
        (BOB, ALICE, BOB),  # an untrusted peer's header is ignored
        (PROXY, "", PROXY),
        (PROXY, "10.1.2.3", "10.1.2.3"),  # only proxies: the leftmost
        (PROXY, "garbage", "garbage"),
    ],
)
def test_client_behind_trusted_networks(peer: str, forwarded_for: str, client: str) -> None:
    middleware = TrustedNetworks(lambda e, s: [], [ipaddress.ip_network("10.0.0.0/8")])
    assert middleware.client(peer, forwarded_for) == client


@pytest.fixture(params=["1", "10.0.0.0/8"], ids=["hops", "networks"])
def proxied(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Flask]:
    app = create_app(
        settings.model_copy(
            update={
                "trusted_proxies": request.param,
                "rate_limit_auth_failures_per_ip": "3/minute",
                "rate_limit_per_ip": "5/minute",
            }
        )
    )
    yield app
    context_of(app).db.dispose()


def via_proxy(app: Flask, client: str, key: str | None = None) -> Any:
    """A test client whose requests come from the proxy, on behalf of ``client``."""
    http = app.test_client()
    http.environ_base.update(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client)
    if key:
        http.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return http


def test_lockout_and_audit_see_the_client_behind_the_proxy(proxied: Flask) -> None:
    ctx = context_of(proxied)
    admin = auth.create_key(ctx, "admin").secret
    guesser = via_proxy(proxied, ALICE, FORGED)
    assert [guesser.get("/api/v1/models").status_code for _ in range(4)] == [401] * 3 + [429]
    assert via_proxy(proxied, BOB).get("/api/v1/models").status_code == 401  # not locked out
    assert via_proxy(proxied, ALICE, admin).get("/api/v1/models").status_code == 200
    created = via_proxy(proxied, BOB, admin).post("/api/v1/keys", json={"role": "viewer"})
    assert created.status_code == 201
    event = audit.list_events(ctx, limit=1)[0]
    assert (event.route, event.remote_addr) == ("/api/v1/keys", BOB)


def test_fast_lane_limits_the_client_behind_the_proxy(
    proxied: Flask, diabetes_frame: pd.DataFrame
) -> None:
    ctx = context_of(proxied)
    admin = auth.create_key(ctx, "admin").secret
    setup = via_proxy(proxied, "192.0.2.1", admin)
    dataset = upload(setup, frame_csv(diabetes_frame), "d.csv").get_json()
    job = train(setup, dataset["id"], target="target", algorithm="ridge", model_name="d").get_json()
    assert job["status"] == "succeeded", job
    row = diabetes_frame.drop(columns="target").iloc[0].to_dict()
    lane = proxied.wsgi_app.app  # type: ignore[attr-defined]
    before = lane.answered
    alice = via_proxy(proxied, ALICE, admin)
    statuses = [
        alice.post("/api/v1/models/d/predict", json={"instances": [row]}).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]  # 5/minute per address
    assert lane.answered - before == 5  # answered by the fast lane, under Alice's count
    bob = via_proxy(proxied, BOB, admin)
    assert bob.post("/api/v1/models/d/predict", json={"instances": [row]}).status_code == 200
