"""``refvps predict --executor ray``: one actor per GPU (or CPU slot), each holding one model,
pulling videos from a queue. Actors write PNGs and markers straight to ``out`` (a filesystem
every node sees) and send back the markers. Each actor loads its model when it starts; the
first load error stops the run (:class:`ModelLoadError`), and ``run.json`` gets the first
actor's info of the model it loaded."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from refvps.baselines.protocol import ModelLoadError
from refvps.baselines.queries import ModelSpec, info_dict, load_model, run_video
from refvps.baselines.registry import segmenter_class
from refvps.loaders import Benchmark, Query, VideoTask
from refvps.ray_support import init_ray


class VideoActor:
    """Holds one loaded segmenter for its lifetime (model loading is the expensive part)."""

    def __init__(self, spec: ModelSpec):
        self.segmenter = None
        self.load_error = ""
        try:
            self.segmenter = spec.build()
            load_model(self.segmenter)
        except Exception as exc:  # reported by info(); an actor that dies says less
            self.load_error = str(exc) if isinstance(exc, ModelLoadError) else \
                f"{spec.name}: the model could not be built: {type(exc).__name__}: {exc}"

    def info(self) -> dict:
        """``{"error": message}`` if the model did not load, else its info as a dict."""
        if self.load_error:
            return {"error": self.load_error}
        return info_dict(self.segmenter)

    def run(self, bench: Benchmark, task: VideoTask, queries: list[Query], out: str) -> list[dict]:
        return run_video(self.segmenter, bench, task, queries, Path(out))

    def close(self) -> None:
        if self.segmenter is not None:
            self.segmenter.close()


def run_on_ray(spec: ModelSpec, bench: Benchmark, todo: list[tuple[VideoTask, list[Query]]],
               out: Path, *, address: str | None = None, workers: int | None = None,
               loaded: Callable[[dict], None] = lambda info: None) -> Iterator[list[dict]]:
    """Yield each video's records as its actor finishes it (after ``loaded(info)``)."""
    ray = init_ray(address)
    from ray.util import ActorPool

    try:
        needs_gpu = bool(getattr(segmenter_class(spec.name), "needs_gpu", False))
    except ValueError:  # a module:Class that only the worker's environment can import
        needs_gpu = False
    resources = ray.cluster_resources()
    # A GPU model on a cluster without GPUs runs its actors on CPU slots (the model picks its
    # device) rather than asking for a GPU that no node has: Ray would wait for it forever.
    on_gpu = needs_gpu and int(resources.get("GPU", 0)) > 0
    slots = int(resources.get("GPU", 0)) if on_gpu else int(resources.get("CPU", 1))
    count = max(1, min(workers or slots or 1, len(todo)))
    actor_cls = ray.remote(num_gpus=1 if on_gpu else 0, num_cpus=1)(VideoActor)
    actors = [actor_cls.remote(spec) for _ in range(count)]
    try:
        infos = ray.get([actor.info.remote() for actor in actors])
        errors = [info["error"] for info in infos if "error" in info]
        if errors:
            raise ModelLoadError(errors[0])
        loaded(infos[0])
        bench_ref = ray.put(bench)
        pool = ActorPool(actors)
        yield from pool.map_unordered(
            lambda actor, item: actor.run.remote(bench_ref, item[0], item[1], str(out)), todo)
    finally:
        ray.get([actor.close.remote() for actor in actors])
        for actor in actors:
            ray.kill(actor)
