"""``refvps predict --executor ray``: one actor per GPU (or CPU slot), each holding one model,
pulling videos from a queue. Actors write PNGs and markers straight to ``out`` (a filesystem
every node sees) and send back the markers."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from refvps.baselines.registry import segmenter_class
from refvps.baselines.runner import ModelSpec, run_video
from refvps.loaders import Benchmark, Query, VideoTask
from refvps.ray_support import init_ray


class VideoActor:
    """Holds one segmenter for its lifetime (model loading is the expensive part)."""

    def __init__(self, spec: ModelSpec):
        self.segmenter = spec.build()

    def run(self, bench: Benchmark, task: VideoTask, queries: list[Query], out: str) -> list[dict]:
        return run_video(self.segmenter, bench, task, queries, Path(out))

    def close(self) -> None:
        self.segmenter.close()


def run_on_ray(spec: ModelSpec, bench: Benchmark, todo: list[tuple[VideoTask, list[Query]]],
               out: Path, *, address: str | None = None,
               workers: int | None = None) -> Iterator[list[dict]]:
    """Yield each video's records as its actor finishes it."""
    ray = init_ray(address)
    from ray.util import ActorPool

    try:
        needs_gpu = bool(getattr(segmenter_class(spec.name), "needs_gpu", False))
    except ValueError:  # a module:Class that only the worker's environment can import
        needs_gpu = False
    resources = ray.cluster_resources()
    slots = int(resources.get("GPU", 0)) if needs_gpu else int(resources.get("CPU", 1))
    count = max(1, min(workers or slots or 1, len(todo)))
    actor_cls = ray.remote(num_gpus=1 if needs_gpu else 0, num_cpus=1)(VideoActor)
    actors = [actor_cls.remote(spec) for _ in range(count)]
    bench_ref = ray.put(bench)
    pool = ActorPool(actors)
    try:
        yield from pool.map_unordered(
            lambda actor, item: actor.run.remote(bench_ref, item[0], item[1], str(out)), todo)
    finally:
        ray.get([actor.close.remote() for actor in actors])
        for actor in actors:
            ray.kill(actor)
