"""Training: what can be trained and how a pipeline is fitted and judged.

Owns: the catalogue of estimators and their hyper-parameters (:mod:`.catalogue`,
described for clients by :mod:`.algorithms`), the preprocessing in front of every
estimator (:mod:`.preprocessing`), the training spec checked at submit time
(:mod:`.spec`), fitting, scoring and cross-validation (:mod:`.fit`), test metrics
(:mod:`.metrics`), plot data on held-out rows (:mod:`.evaluation`), model signatures
(:mod:`.signature`), the reference statistics kept for drift (:mod:`.reference`), and the
rows an incremental model keeps for its online updates (:mod:`.memory`, sampled by the
seeded reservoir of :mod:`.reservoir`).
Pure functions of data: no database, no files.

May import: ``datasets`` (column statistics), ``store`` (the document shapes),
``settings``, ``errors``.
"""
