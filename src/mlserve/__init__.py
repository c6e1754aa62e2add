"""mlserve: train on a CSV, register versioned models, serve predictions over REST."""

from mlserve.app import create_app
from mlserve.errors import MlserveError
from mlserve.settings import Settings

__all__ = ["MlserveError", "Settings", "__version__", "create_app"]
__version__ = "0.2.0"
