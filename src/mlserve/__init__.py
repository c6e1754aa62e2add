"""mlserve: train on a CSV, register versioned models, serve predictions over REST.

The package's public names: :func:`create_app` (the WSGI application factory),
:class:`Settings` and :class:`MlserveError`; the Python client is
:class:`mlserve.client.Client`. The layout of the package is in README.md ("Layout").

``create_app`` is imported on first use (PEP 562 module ``__getattr__``), so that
``import mlserve.client`` or the ``mlserve`` command do not load the server's
libraries (web framework, scikit-learn, ONNX Runtime).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from mlserve.errors import MlserveError
from mlserve.settings import Settings

if TYPE_CHECKING:
    from mlserve.app import create_app

__all__ = ["MlserveError", "Settings", "__version__", "create_app"]
__version__ = version("mlserve")


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from mlserve.app import create_app

        return create_app
    raise AttributeError(f"module 'mlserve' has no attribute {name!r}")
