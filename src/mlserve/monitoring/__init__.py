"""Monitoring: what happens to models in production.

Owns: sampled asynchronous prediction logging (:mod:`.prediction_log`), feedback, live
metrics and the drift report of recent inputs (:mod:`.live`), PSI and KS statistics
(:mod:`.drift`), and the Prometheus exposition (:mod:`.prometheus`).

May import: ``online``, ``jobs``, ``serving``, ``registry``, ``training``, ``datasets``,
``context``, ``store``, ``settings``, ``errors``.
"""
