"""Online learning: labelled samples update incremental models as guarded versions.

Owns: storing samples (:mod:`.samples`, read as model input by :mod:`.frames`), the update
policy, the online state and retraining with samples (:mod:`.policy`), the update job
itself, exactly once (:mod:`.update`, its transaction :mod:`.commit`): what it remembers
(replay and held-out reservoirs, :mod:`.replay`), how it learns (:mod:`.learn`), the
prequential error of the stream (:mod:`.prequential`), and the guard that decides whether
a new version becomes ``production`` (:mod:`.guard`). docs/online-learning.md explains
the design.

May import: ``jobs``, ``serving``, ``registry``, ``training``, ``datasets``, ``context``,
``store``, ``settings``, ``errors``.
"""
