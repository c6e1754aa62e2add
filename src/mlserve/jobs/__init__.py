"""Training jobs: submitted, queued, run by workers, inspected.

Owns: submitting and executing training jobs, their progress and their state
(:mod:`.service`) and what they do for online learning (:mod:`.online_support`); the
worker process (:mod:`.worker`); worker heartbeats, readiness and
the recovery of jobs whose worker died (:mod:`.heartbeat`); the demo models trained at
first start (:mod:`.demo`).

May import: ``serving`` (compilation at registration), ``registry``, ``training``,
``datasets``, ``context``, ``store``, ``settings``, ``errors``.
"""
