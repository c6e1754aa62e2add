"""``mlserve worker`` whose online updates pause just before their commit (fault injection).

The update has applied its samples and written its artifact when it prints
``ONLINE-COMMIT`` and sleeps ``MLSERVE_TEST_COMMIT_PAUSE_S`` seconds: a ``kill -9``
then lands exactly in the window the exactly-once design is about.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from mlserve.cli.main import main
from mlserve.online import update as online_update

real_commit = online_update.commit_update


def paused_commit(*args: Any, **kwargs: Any) -> Any:
    print("ONLINE-COMMIT", flush=True)
    time.sleep(float(os.environ.get("MLSERVE_TEST_COMMIT_PAUSE_S", "60")))
    return real_commit(*args, **kwargs)


if __name__ == "__main__":
    online_update.commit_update = paused_commit  # type: ignore[assignment]
    sys.argv = ["mlserve", "worker"]
    main()
