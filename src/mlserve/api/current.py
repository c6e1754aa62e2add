"""The one typed accessor of the process's :class:`~mlserve.context.Context` in views and pages.

:func:`mlserve.create_app` attaches the context to the application once
(:func:`attach_context`); a view calls :func:`current_context`, anything holding the
application object calls :func:`context_of`. Nothing else reads ``app.extensions``.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from mlserve.context import Context

EXTENSION = "mlserve"


def attach_context(app: Flask, ctx: Context) -> None:
    """Make ``ctx`` the context of ``app`` (once, when the application is built)."""
    app.extensions[EXTENSION] = ctx


def context_of(app: Flask) -> Context:
    """The context of ``app``.

    Raises
    ------
    KeyError
        ``app`` was not built by :func:`mlserve.create_app`.
    """
    return cast(Context, app.extensions[EXTENSION])


def current_context() -> Context:
    """The context of the application handling the current request."""
    return context_of(cast(Flask, current_app))
