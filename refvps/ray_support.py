"""Connecting to Ray (optional extra ``refvps[ray]``), shared by ``predict`` and ``eval``."""
from __future__ import annotations

import os

from refvps.errors import RefvpsError


def import_ray():
    try:
        import ray
    except ImportError:
        raise RefvpsError("--executor ray needs Ray: pip install 'refvps[ray]'") from None
    return ray


def init_ray(address: str | None = None):
    """Ray, connected to ``address`` (an existing cluster, or "auto"), else a local instance.

    An already initialised Ray is reused. A local instance passes this process's PYTHONPATH to
    its workers so that they import the same refvps.
    """
    ray = import_ray()
    if not ray.is_initialized():
        runtime_env = None
        if address is None and os.environ.get("PYTHONPATH"):
            runtime_env = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}}
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                 include_dashboard=False)
    return ray
