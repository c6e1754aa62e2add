"""The model registry: named models, numbered versions, aliases, artifacts with sha256.

Owns: adding versions, aliases, resolving what a request means (:mod:`.service`); the
database-only lookups of the request path and the registry generation that tells
serving processes to refresh (:mod:`.lookup`); JSON-ready views of models and versions
(:mod:`.views`).

May import: ``training`` (the result a version is made of), ``context``, ``store``,
``settings``, ``errors``.
"""
