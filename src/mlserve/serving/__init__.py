"""Serving: load model versions safely, validate inputs against signatures, predict.

Owns: the prediction service (:mod:`.predict`) and its CSV variant (:mod:`.csvio`); the
per-process cache of loaded versions with its sha256 and skops allow-list checks
(:mod:`.loader`) and the cached version lookups with hot swap (:mod:`.resolver`); input
validation (:mod:`.validation`, whole columns at once in :mod:`.json_columns`);
runtimes (ONNX Runtime, scikit-learn) and batching calibration (:mod:`.runtime`), a
compiled graph's session (:mod:`.onnx_model`), micro-batching (:mod:`.batching`);
compiling pipelines to ONNX at registration (:mod:`.compile`, :mod:`.onnx`,
:mod:`.onnx_converters`, :mod:`.onnx_trees`); loading the ``production`` versions as a
worker starts (:mod:`.preload`).

What the predict path imports (loader, runtime, validation, onnx_model, predict, oip)
needs neither scikit-learn, pandas nor pyarrow at import time: they are imported where a
request needs them (:mod:`mlserve.lazy`; ``tests/test_lazy.py`` checks it).

May import: ``registry``, ``training``, ``datasets``, ``context``, ``store``,
``settings``, ``errors``.
"""
