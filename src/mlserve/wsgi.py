"""WSGI entry point for servers that import the application by name.

``mlserve serve`` uses it for granian; it also lets any WSGI server run mlserve
(``gunicorn 'mlserve.wsgi:create()'``). Configuration comes from ``MLSERVE_*``
environment variables.
"""

from __future__ import annotations

from flask import Flask

from mlserve.app import create_app
from mlserve.server import limit_native_threads


def create() -> Flask:
    """Build the application from the environment (see :class:`mlserve.Settings`).

    Native thread pools (BLAS, OpenMP) are limited to one thread: a WSGI
    server runs one worker process per core.

    Returns
    -------
    Flask
        The WSGI application, as :func:`mlserve.create_app` builds it.
    """
    limit_native_threads()
    return create_app()
