"""Serving: load model versions safely, validate inputs against signatures, predict.

Owns: the prediction service (:mod:`.predict`) and its CSV variant (:mod:`.csvio`); the
per-process cache of loaded versions with its sha256 and skops allow-list checks
(:mod:`.loader`) and the cached version lookups with hot swap (:mod:`.resolver`); input
validation (:mod:`.validation`); runtimes (ONNX Runtime, scikit-learn) and batching
calibration (:mod:`.runtime`), micro-batching (:mod:`.batching`); compiling pipelines to
ONNX at registration (:mod:`.compile`, :mod:`.onnx`, :mod:`.onnx_converters`,
:mod:`.onnx_trees`).

May import: ``registry``, ``training``, ``datasets``, ``context``, ``store``,
``settings``, ``errors``.
"""
