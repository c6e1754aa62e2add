"""Modules imported on first use, so that an HTTP worker stays lean.

A worker that only serves compiled versions needs neither scikit-learn, pandas nor
pyarrow (issue 18, item 6): they cost about 2 s of start-up and 150 MB of memory
per process. The views and the composition root reach the services that need them
(training, datasets, online learning, drift, registration) through
:func:`lazy_module`, which imports the service on the first attribute read.

Owns nothing else; imports only the standard library, so any layer may use it.
Static tools still see every dependency: each use sits beside the real import
under ``typing.TYPE_CHECKING``, which mypy checks and import-linter's layer
contracts count.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A stand-in for module ``name`` that imports it when an attribute is read.

    Every read goes to the real module (only the module object is kept, not its
    attributes), so what tests patch on the real module is what callers see.
    :func:`importlib.import_module` takes the import system's per-module lock:
    threads reading at once import the module once.

    Parameters
    ----------
    name : str
        Absolute module name, for example ``"mlserve.jobs.service"``.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name, f"imported on first use: {name}")
        self.__dict__["_lazy_target"] = name

    def _module(self) -> types.ModuleType:
        module: types.ModuleType | None = self.__dict__.get("_lazy_module")
        if module is None:
            module = self.__dict__["_lazy_module"] = importlib.import_module(
                self.__dict__["_lazy_target"]
            )
        return module

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._module(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._module(), attribute, value)

    def __delattr__(self, attribute: str) -> None:
        delattr(self._module(), attribute)


def lazy_module(name: str) -> Any:
    """Module ``name``, imported when one of its attributes is first read.

    Parameters
    ----------
    name : str
        Absolute module name.

    Returns
    -------
    LazyModule
        Reads, writes and deletes of attributes go to the real module.

    Raises
    ------
    ModuleNotFoundError
        On the first attribute read, if ``name`` cannot be imported.
    """
    return LazyModule(name)
