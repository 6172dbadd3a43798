"""Run per-video scoring tasks in-process, on a local process pool or on Ray, with a progress bar."""
from __future__ import annotations

import math
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from refvps.errors import RefvpsError

if TYPE_CHECKING:
    from refvps.loaders.base import Benchmark, TaskResult, VideoTask

EXECUTORS = ("local", "ray")

_STATE: dict = {}
WATCHDOG_S = 0.5
"""How often a pool worker checks that the process that started it is still alive."""
_BROKEN_POOL = (
    "a worker process of the evaluation pool died. If refvps.evaluate is called from a script, "
    "put the call under `if __name__ == \"__main__\":` (workers re-import the main script); "
    "workers=1 evaluates in this process. Otherwise the machine may be out of memory.")


def _init_worker(benchmark: Benchmark, store, allow_missing: bool) -> None:
    from refvps.allocator import keep_freed_memory

    # Parallelism comes from the processes: OpenCV, where a worker loads it (a fallback
    # reader, the NumPy kernel), gets one thread.
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)
    else:
        os.environ["OPENCV_FOR_THREADS_NUM"] = "1"  # read by OpenCV when it loads
    keep_freed_memory()
    _STATE.update(benchmark=benchmark, store=store, allow_missing=allow_missing)


def _ready() -> None:
    """Nothing: a pool worker that returns it is up and waiting for tasks."""


def _score(task: VideoTask) -> TaskResult:
    from refvps.loaders.base import score_safely

    return score_safely(_STATE["benchmark"], task, _STATE["store"], _STATE["allow_missing"])


def _die_with_parent() -> None:
    """Make this worker end within moments of the process that started the pool, however that
    one ends (Ctrl+C, SIGTERM, SIGKILL, a crash), and release the stdout/stderr it inherited.

    A worker's parent is the fork server (or, with a plain fork, the caller). The fork server
    exits when every holder of its "alive" pipe has exited: the caller, and each worker, which
    inherits a copy to start processes of its own. Workers start none, so they close that copy;
    then the caller's death ends the fork server, and the worker's parent is gone. On Linux the
    kernel then kills the worker at once (``PR_SET_PDEATHSIG``); everywhere a watchdog thread
    notices the new parent within ``WATCHDOG_S`` seconds and exits. Ctrl+C reaches the whole
    process group: workers ignore it and the caller shuts them down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        try:
            os.close(alive_fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_S)
        os._exit(1)

    threading.Thread(target=watch, name="refvps-parent-watchdog", daemon=True).start()


def _init_pool_worker(initializer, initargs: tuple) -> None:
    _die_with_parent()
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def _without_cwd_on_path() -> Iterator[None]:
    """Start helper interpreters (fork server, resource tracker) that cannot import from the
    current folder.

    They run as ``python -c``, which puts the current folder first on ``sys.path``: a folder
    named ``refvps`` there (the parent of a clone, with an editable install) would be imported
    as an empty namespace package instead of refvps. ``PYTHONSAFEPATH`` (Python 3.11+) drops
    that entry; older Pythons start them from the folder holding the installed package.
    """
    previous = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    cwd = os.getcwd() if sys.version_info < (3, 11) else None
    try:
        if cwd is not None:
            os.chdir(Path(__file__).resolve().parent.parent)
        yield
    finally:
        if cwd is not None:
            os.chdir(cwd)
        if previous is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = previous


_WORKER_MODULES = ("refvps.executors", "refvps.loaders.base", "refvps.predictions",
                   "refvps.pngdecode")
"""What every scoring worker imports, done once in the fork server. Not OpenCV (its libraries
take 40 ms to load): workers use it only where a benchmark's module imports it, or to fall
back on it."""


def start_pool_server(modules: tuple[str, ...] = ()) -> None:
    """Start the fork server now, with ``modules`` imported in it too: called before the
    benchmark is loaded, so these imports run on another core meanwhile and the pool's workers
    start with nothing left to import."""
    pool_context(modules)


def start_resource_tracker(workers: int | None) -> None:
    """Start multiprocessing's resource tracker now when this evaluation may use a pool.

    The fork server needs it and starts it first: a fresh interpreter whose start then competes
    with the fork server's imports for the core this process is not scoring on. Started while
    the benchmark loads, it is up by then, and the first worker is ready sooner: 0.23 s instead
    of 0.30 s after the fork server is asked for, with the other core busy (medians of 12 runs).
    It is idle until a pool starts, and ends with this process.
    """
    if (default_workers() if workers is None else workers) > 1 and _fork_server_usable():
        from multiprocessing import resource_tracker

        with _without_cwd_on_path():
            resource_tracker.ensure_running()


def _fork_server_usable() -> bool:
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return "forkserver" in multiprocessing.get_all_start_methods() and (
        main_file is None or os.path.isfile(main_file))


def pool_context(modules: tuple[str, ...] = ()) -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process, never from this one.

    Forking a process that has run OpenCV (or any library with a thread pool) can copy a lock
    held by one of its threads, and the child then hangs forever in ``cv2.setNumThreads``. A
    fork server has run nothing but the imports below, so its children start clean; the imports
    are done once, in the server, so each worker starts in milliseconds. Like every spawn-style
    start method it re-imports the main script in the workers, so a script that calls
    ``refvps.evaluate`` must do so under ``if __name__ == "__main__":``. A main script that
    cannot be re-imported (read from standard input) falls back to a plain fork.
    """
    if _fork_server_usable():
        from multiprocessing import forkserver

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([*_WORKER_MODULES, *modules])  # read when it starts
        with _without_cwd_on_path():
            forkserver.ensure_running()
        return context
    return multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


@contextmanager
def process_pool(workers: int, initializer=None, initargs: tuple = ()
                 ) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers end with this process (see :func:`_die_with_parent`), and are
    terminated at once, not waited for, when the caller leaves with an exception (Ctrl+C,
    SIGTERM, an error)."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(),
                               initializer=_init_pool_worker, initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def score_remote(benchmark: Benchmark, store, task: VideoTask, allow_missing: bool) -> TaskResult:
    """One task on a Ray worker (module-level so that Ray can import it)."""
    from refvps.loaders.base import score_safely

    return score_safely(benchmark, task, store, allow_missing)


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


SMALL_JOB_FRAMES = 3000
"""Below this many query-frames one process scores the job, whatever the worker count asked
for: starting a pool (its fork server imports numpy and the scoring modules on the other core
meanwhile) costs more than a second process saves there, and two workers would be slower than
one."""


def _task_frames(task: VideoTask) -> int:
    return sum(len(query.frames) for query in task.queries)


PARTS_PER_WORKER = 4
"""A pool's tasks are cut to at most 1/(this x workers) of the job's query-frames: with fewer,
larger tasks, a worker that starts late (its process imports numpy and more first) or the
last task to finish leaves the other processes idle for longer."""


def _schedule(benchmark: Benchmark, store, tasks: list[VideoTask],
              workers: int) -> list[VideoTask]:
    """The order a pool takes the tasks in: largest first, so that the last ones to finish are
    short. Where the benchmark scores query by query, a video longer than the cap above is cut
    into parts of consecutive queries, and the ``workers`` shortest videos at least in halves,
    so that no process is left with a whole video while the others wait (results are put in
    scoring order afterwards, whatever order they arrive in)."""
    ordered = sorted(tasks, key=_task_frames, reverse=True)
    cap = max(1, sum(_task_frames(task) for task in tasks) / (PARTS_PER_WORKER * workers))
    shortest = {id(task) for task in ordered[-workers:]}
    parts = [part for task in ordered for part in benchmark.split_task(
        task, store, max(2 if id(task) in shortest else 1, math.ceil(_task_frames(task) / cap)))]
    return sorted(parts, key=_task_frames, reverse=True)


def pool_workers(tasks: list[VideoTask], workers: int | None) -> int:
    """How many processes score ``tasks`` on this machine: ``workers`` (default: every core
    this process may use), at most one per task, and one for a job under
    :data:`SMALL_JOB_FRAMES` query-frames."""
    if sum(_task_frames(task) for task in tasks) < SMALL_JOB_FRAMES:
        return 1
    wanted = default_workers() if workers is None else max(1, workers)
    return max(1, min(wanted, len(tasks)))


def _score_with_pool(benchmark: Benchmark, store, tasks: list[VideoTask], allow_missing: bool,
                     workers: int, bar) -> Iterator[TaskResult]:
    """Score on ``workers - 1`` pool processes and in this process, all taking tasks from one
    queue in :func:`_schedule` order.

    This process would otherwise sit idle waiting for results; scoring here instead starts at
    once, while the pool's workers start (a thread starts them: a submit waits until the fork
    server has finished its imports), and its results need no transfer. A worker gets its first
    task once it is up, and each next one as it returns the last, so that a task never waits
    for a worker while this process could score it, and no worker holds queued tasks while
    another has none: on a small job this process may score everything.
    """
    from refvps.loaders.base import score_safely

    pending = deque(_schedule(benchmark, store, tasks, workers))
    parts = Counter(task.video for task in pending)
    total = len(pending)
    finished: queue.SimpleQueue = queue.SimpleQueue()  # (video, future) from the pool
    probes: list[Future] = []
    start_failed: list[Exception] = []

    with process_pool(workers - 1, _init_worker, (benchmark, store, allow_missing)) as pool:
        def submit_next() -> None:
            try:
                task = pending.popleft()
            except IndexError:
                return
            try:
                future = pool.submit(_score, task)
            except (BrokenProcessPool, RuntimeError) as exc:  # broken, or shut down on an error
                future = Future()
                future.set_exception(exc)
                finished.put((task.video, future))
                return
            future.add_done_callback(lambda done: on_done(task.video, done))

        def on_done(video: str, future: Future) -> None:  # runs on the pool's manager thread
            finished.put((video, future))
            if not future.cancelled() and future.exception() is None:
                submit_next()

        def on_ready(probe: Future) -> None:  # a worker is up: give it a task
            if not probe.cancelled() and probe.exception() is None:
                submit_next()

        def start_workers() -> None:
            for _ in range(workers - 1):
                try:
                    probes.append(pool.submit(_ready))
                except BrokenProcessPool as exc:
                    start_failed.append(exc)
                    return
                except RuntimeError:  # shut down: this process left on an error
                    return
                except Exception as exc:  # a worker could not be started (fork, fork server)
                    start_failed.append(exc)
                    return
                probes[-1].add_done_callback(on_ready)

        starter = threading.Thread(target=start_workers, name="refvps-pool-starter", daemon=True)
        starter.start()
        try:
            for _ in range(total):
                if finished.empty() and pending:
                    try:
                        task = pending.popleft()
                    except IndexError:  # the pool's last refill took it
                        pass
                    else:
                        yield score_safely(benchmark, task, store, allow_missing)
                        bar.update(1 / parts[task.video])  # the bar counts videos
                        continue
                video, future = finished.get()
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise RefvpsError(_BROKEN_POOL) from None
                yield result
                bar.update(1 / parts[video])
        finally:
            pending.clear()  # nothing more for the pool once this ends, however it ends
            starter.join()  # its workers started, so that an error can stop them
    # A worker that could not start is an error even when this process scored everything.
    if start_failed:
        exc = start_failed[0]
        raise RefvpsError(_BROKEN_POOL if isinstance(exc, BrokenProcessPool) else
                          f"the evaluation pool could not start a worker process "
                          f"({type(exc).__name__}: {exc}); workers=1 (-j 1) evaluates in this "
                          "process")
    if any(not probe.cancelled() and isinstance(probe.exception(), BrokenProcessPool)
           for probe in probes):
        raise RefvpsError(_BROKEN_POOL)


class _NoBar:
    def update(self, n: float = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(progress: bool, **options):
    """A tqdm bar on a terminal (as tqdm's own ``disable=None``), else one that shows nothing,
    without importing tqdm (45 ms): the command line starts without it."""
    if not progress or not getattr(sys.stderr, "isatty", lambda: False)():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(**options, leave=False)


def score_tasks(benchmark: Benchmark, store, tasks: list[VideoTask], *, allow_missing: bool,
                workers: int | None = None, executor: str = "local",
                progress: bool = True, address: str | None = None) -> Iterator[TaskResult]:
    """Yield one :class:`TaskResult` per task (in completion order).

    ``executor="ray"`` submits one Ray task per video to the cluster at ``address`` (default: a
    local instance; ``workers`` is then ignored, Ray schedules on every CPU it has).
    """
    from refvps.loaders.base import score_safely

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    workers = pool_workers(tasks, workers)
    bar = _progress_bar(progress, total=len(tasks), unit="video", desc=f"scoring {benchmark.name}")
    try:
        if executor == "ray":
            for result in _score_on_ray(benchmark, store, tasks, allow_missing, address):
                yield result
                bar.update()
            return
        if workers == 1:
            for task in tasks:
                yield score_safely(benchmark, task, store, allow_missing)
                bar.update()
            return
        yield from _score_with_pool(benchmark, store, tasks, allow_missing, workers, bar)
    finally:
        bar.close()
