"""Datasets: uploads read and checked, stored as Parquet, described by statistics.

Owns: reading CSV and Parquet uploads within limits (:mod:`.upload`, :mod:`.parquet`,
:mod:`.limits`), storing them, listing and reading them back (:mod:`.service`);
per-column schema and statistics (:mod:`.stats`).

May import: ``context``, ``store``, ``settings``, ``errors``.
"""
