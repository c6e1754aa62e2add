"""Access: API keys and roles, the audit log, rate limits.

Owns: creating, verifying (HMAC, constant time), caching and revoking API keys and the
roles they grant (:mod:`.keys`); one server secret per cluster, checked by its
fingerprint (:mod:`.secret`); the audit log of changes (:mod:`.audit`); request
counters per key and per address (:mod:`.ratelimit`, the ``limits`` library).
Knows nothing of HTTP: the access check of requests is :mod:`mlserve.api.security`.

May import: ``context``, ``store``, ``settings``, ``errors``.
"""
