"""A small synchronous Python client for the mlserve REST API.

::

    from mlserve.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        dataset = client.upload_dataset("iris.csv")
        job = client.create_training_job(dataset["id"], "species", "random_forest", "iris")
        job = client.wait_for_job(job["id"])
        result = client.predict("iris", [{"sepal_length": 5.1, ...}], alias="production")

Every method returns the server's JSON body as parsed Python objects. Errors
are raised as subclasses of :class:`ClientError`:

::

    ClientError
    ├── ApiError          the server answered with a non-2xx status
    ├── ConnectionFailed  the server could not be reached (or did not answer in time)
    ├── InvalidResponse   a 2xx answer whose body is not a JSON object
    └── JobTimeout        wait_for_job gave up (also a TimeoutError)

Independent of the server side: imports nothing of mlserve outside this package (an
import-linter contract), so it installs and runs without the server's libraries.
"""

from mlserve.client._client import DEFAULT_URL, TERMINAL_JOB_STATUSES, TRAINING_OPTIONS, Client
from mlserve.client._exceptions import (
    ApiError,
    ClientError,
    ConnectionFailed,
    InvalidResponse,
    JobTimeout,
)

__all__ = [
    "DEFAULT_URL",
    "TERMINAL_JOB_STATUSES",
    "TRAINING_OPTIONS",
    "ApiError",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "InvalidResponse",
    "JobTimeout",
]
