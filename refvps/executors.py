"""Run per-video scoring tasks in-process, on a local process pool or on Ray, with a progress bar."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterator

from tqdm import tqdm

from refvps.loaders.base import Benchmark, TaskResult, VideoTask

EXECUTORS = ("local", "ray")

_STATE: dict = {}


def _init_worker(benchmark: Benchmark, store, allow_missing: bool) -> None:
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the processes
    _STATE.update(benchmark=benchmark, store=store, allow_missing=allow_missing)


def _score(task: VideoTask) -> TaskResult:
    return _STATE["benchmark"].score_task(task, _STATE["store"], _STATE["allow_missing"])


def _submit_all(pool: ProcessPoolExecutor, tasks: list[VideoTask]) -> list:
    """Submit every task (the workers fork meanwhile) with OpenCV's thread pool stopped.

    If this process already ran OpenCV (an earlier in-process evaluation), a pool thread may
    hold the pool's lock at the moment of a fork, and the worker then hangs forever in
    ``cv2.setNumThreads``. One thread means no pool threads; the setting is restored after.
    """
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return [pool.submit(_score, task) for task in tasks]
    finally:
        cv2.setNumThreads(threads)


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
                                 initargs=(benchmark, store, allow_missing)) as pool:
            futures = _submit_all(pool, tasks)
            for future in as_completed(futures):
                yield future.result()
                bar.update()
    finally:
        bar.close()
