"""The REST API: one blueprint per resource, thin views, one JSON error handler.

Owns: the ``/api/v1`` routes, the KServe V1 route, ``/health``, ``/ready``, ``/metrics``
and the OpenAPI document; the access check (keys, sessions, roles, CSRF, rate limits,
audit hook, security headers); JSON bodies (orjson; msgspec for large records bodies on
the fast lane); the prediction fast lane (a WSGI layer answering plain predictions without
Flask); the one accessor of the process's
context (:func:`mlserve.api.current.current_context`).

A view parses and validates its request, calls one service, and serializes the answer.

May import: the services (``datasets``, ``training``, ``jobs``, ``registry``,
``serving``, ``online``, ``monitoring``, ``security``), ``bootstrap``, ``context``,
``store``, ``settings``, ``errors``. Never ``web``, ``cli`` or ``server``.
"""
