"""Run per-video scoring tasks in-process, on a local process pool or on Ray, with a progress bar."""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Iterator

from tqdm import tqdm

from refvps.errors import RefvpsError

if TYPE_CHECKING:
    from refvps.loaders.base import Benchmark, TaskResult, VideoTask

EXECUTORS = ("local", "ray")

_STATE: dict = {}
_BROKEN_POOL = (
    "a worker process of the evaluation pool died. If refvps.evaluate is called from a script, "
    "put the call under `if __name__ == \"__main__\":` (workers re-import the main script); "
    "workers=1 evaluates in this process. Otherwise the machine may be out of memory.")


def _init_worker(benchmark: Benchmark, store, allow_missing: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the processes
    _STATE.update(benchmark=benchmark, store=store, allow_missing=allow_missing)


def _score(task: VideoTask) -> TaskResult:
    return _STATE["benchmark"].score_task(task, _STATE["store"], _STATE["allow_missing"])


def pool_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process, never from this one.

    Forking a process that has run OpenCV (or any library with a thread pool) can copy a lock
    held by one of its threads, and the child then hangs forever in ``cv2.setNumThreads``. A
    fork server has run nothing but the imports below, so its children start clean; the imports
    are done once, in the server, so each worker starts in milliseconds. Like every spawn-style
    start method it re-imports the main script in the workers, so a script that calls
    ``refvps.evaluate`` must do so under ``if __name__ == "__main__":``. A main script that
    cannot be re-imported (read from standard input) falls back to a plain fork.
    """
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods and (main_file is None or os.path.isfile(main_file)):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["refvps.executors", "cv2"])
        return context
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def score_remote(benchmark: Benchmark, store, task: VideoTask, allow_missing: bool) -> TaskResult:
    """One task on a Ray worker (module-level so that Ray can import it)."""
    return benchmark.score_task(task, store, allow_missing)


def _score_on_ray(benchmark: Benchmark, store, tasks: list[VideoTask], allow_missing: bool,
                  address: str | None) -> Iterator[TaskResult]:
    from refvps.ray_support import init_ray

    ray = init_ray(address)
    remote = ray.remote(num_cpus=1)(score_remote)
    bench_ref, store_ref = ray.put(benchmark), ray.put(store)
    pending = [remote.remote(bench_ref, store_ref, task, allow_missing) for task in tasks]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def score_tasks(benchmark: Benchmark, store, tasks: list[VideoTask], *, allow_missing: bool,
                workers: int | None = None, executor: str = "local",
                progress: bool = True, address: str | None = None) -> Iterator[TaskResult]:
    """Yield one :class:`TaskResult` per task (in completion order).

    ``executor="ray"`` submits one Ray task per video to the cluster at ``address`` (default: a
    local instance; ``workers`` is then ignored, Ray schedules on every CPU it has).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    workers = default_workers() if workers is None else max(1, workers)
    workers = min(workers, len(tasks)) or 1
    bar = tqdm(total=len(tasks), unit="video", desc=f"scoring {benchmark.name}",
               disable=None if progress else True, leave=False)
    try:
        if executor == "ray":
            for result in _score_on_ray(benchmark, store, tasks, allow_missing, address):
                yield result
                bar.update()
            return
        if workers == 1:
            for task in tasks:
                yield benchmark.score_task(task, store, allow_missing)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(benchmark, store, allow_missing),
                                 mp_context=pool_context()) as pool:
            futures = [pool.submit(_score, task) for task in tasks]
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise RefvpsError(_BROKEN_POOL) from None
                yield result
                bar.update()
    finally:
        bar.close()
