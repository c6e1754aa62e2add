"""Native thread pools of the jobs a worker runs at once.

A worker process runs ``jobs_concurrency`` jobs at once, each on its own thread
(Huey's thread workers). Estimators parallelise inside native libraries: BLAS for
linear algebra, OpenMP for histogram gradient boosting and torch. Left alone each
pool starts one thread per core, so two jobs on 8 cores would ask for 16 threads.
Each job thread therefore limits its pools to ``cores // jobs_concurrency``
(:func:`native_threads_per_job`). mlserve never sets an estimator's ``n_jobs``
(clients may not either: :data:`mlserve.training.catalogue.FORBIDDEN_PARAMS`), so
joblib's process and thread pools stay at one.

``threadpoolctl`` limits OpenMP per calling thread and BLAS per process; every job
thread of a worker sets the same number and never restores it, so two jobs never undo
each other's limit.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_info, threadpool_limits


def native_threads_per_job(concurrency: int, cores: int | None = None) -> int:
    """Native threads each of ``concurrency`` jobs may use: ``max(1, cores // concurrency)``.

    Parameters
    ----------
    concurrency : int
        Jobs running at once in the process (at least 1).
    cores : int, optional
        Default: ``os.cpu_count()`` (1 when unknown).
    """
    cores = cores if cores is not None else os.cpu_count() or 1
    return max(1, cores // max(1, concurrency))


def limit_job_threads(threads: int) -> None:
    """Limit the native thread pools (BLAS, OpenMP) of the calling job thread to ``threads``.

    Kept after the job: the thread runs the worker's next job under the same limit.
    """
    threadpool_limits(limits=threads)


def native_thread_counts() -> dict[str, int]:
    """``user_api`` (``"blas"``, ``"openmp"``) -> the largest thread count of its loaded
    pools, as the calling thread sees them (``threadpoolctl.threadpool_info``)."""
    counts: dict[str, int] = {}
    for pool in threadpool_info():
        api = str(pool["user_api"])
        counts[api] = max(counts.get(api, 0), int(pool["num_threads"]))
    return counts
