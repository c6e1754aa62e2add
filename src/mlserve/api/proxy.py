"""The client's address behind trusted reverse proxies (``MLSERVE_TRUSTED_PROXIES``).

Behind a proxy, ``REMOTE_ADDR`` is the proxy: per-address rate limits, the
failed-authentication lockout and the audit log would count every client as one.
Proxies append the address they received a request from to ``X-Forwarded-For``; that
header is believed only as far as the setting says, since a client can send one
with anything in it:

- a hop count ``n``: the ``n`` proxies in front are trusted, the client is the
  ``n``-th address from the right (Werkzeug's ``ProxyFix``, which also applies
  ``X-Forwarded-Proto`` and keeps the original values in
  ``werkzeug.proxy_fix.orig``);
- addresses or networks (``10.0.0.0/8,127.0.0.1``): when the peer is one of them, the
  client is the rightmost address of ``X-Forwarded-For`` that is not (the algorithm
  of nginx's ``real_ip_recursive``); from any other peer the header is ignored.

The middleware wraps the whole WSGI application, the prediction fast lane
included, so both paths see the same ``REMOTE_ADDR``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(text: str) -> int | list[Network]:
    """``MLSERVE_TRUSTED_PROXIES`` as a hop count or a list of networks.

    Returns
    -------
    int or list of ip_network
        ``0`` (trust none) for an empty value.

    Raises
    ------
    ValueError
        Neither a count in [0, 10] nor comma-separated addresses or networks.
    """
    text = text.strip()
    if not text:
        return 0
    if text.isdigit():
        count = int(text)
        if count > 10:
            raise ValueError(f"trusted_proxies: at most 10 hops, not {count}")
        return count
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",")]


def with_trusted_proxies(app: WSGIApp, setting: str) -> WSGIApp:
    """``app`` wrapped so that ``REMOTE_ADDR`` is the client behind the trusted proxies;
    ``app`` itself when none is trusted.

    Raises
    ------
    ValueError
        A malformed setting (see :func:`parse_trusted_proxies`).
    """
    trusted = parse_trusted_proxies(setting)
    if isinstance(trusted, int):
        return ProxyFix(app, x_for=trusted, x_proto=trusted) if trusted else app
    return TrustedNetworks(app, trusted)


class TrustedNetworks:
    """WSGI middleware believing ``X-Forwarded-For`` from peers in ``networks``.

    Parameters
    ----------
    app : WSGI application
    networks : list of ip_network
    """

    def __init__(self, app: WSGIApp, networks: list[Network]) -> None:
        self.app = app
        self.networks = networks

    def trusted(self, address: str) -> bool:
        """Whether ``address`` is in one of the trusted networks (``False`` if malformed)."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client address of a request from ``peer`` carrying ``forwarded_for``."""
        if not forwarded_for or not self.trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        client = self.client(peer, environ.get("HTTP_X_FORWARDED_FOR", ""))
        if client != peer:
            environ["mlserve.proxy_peer"] = peer
            environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)
