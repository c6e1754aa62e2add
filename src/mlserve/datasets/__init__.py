"""Datasets: uploads read and checked, stored as Parquet, described by statistics.

Owns: reading CSV and Parquet uploads within limits, in batches (:mod:`.upload`,
:mod:`.csvtypes`, :mod:`.parquet`, :mod:`.limits`), storing them batch by batch
(:mod:`.tables`), listing and reading them back (:mod:`.service`); per-column schema and
statistics (:mod:`.stats`, and :mod:`.summaries` for a stored file).

May import: ``context``, ``store``, ``settings``, ``errors``.
"""
