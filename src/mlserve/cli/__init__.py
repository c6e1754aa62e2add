"""The ``mlserve`` command.

Owns: ``serve``, ``worker``, ``db upgrade`` (:mod:`.main`), ``keys`` (direct database
access on the server's machine, :mod:`.keys`) and the client-backed user commands
(``datasets``, ``train``, ``models``, ``predict``...: :mod:`.user`, :mod:`.inputs`).

An entry point: may import anything below it (``server``, ``app``, ``bootstrap``, the
services, ``client``). Nothing imports it but ``mlserve.__main__``.
"""
