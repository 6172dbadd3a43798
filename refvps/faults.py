"""Named fault-injection points, for tests that kill or fail a real process at an exact step.

Writers call :func:`checkpoint` between their atomic steps. Normally it does nothing (one dict
lookup). With ``REFVPS_FAULT=<point>:<action>`` in the environment, reaching ``<point>`` either
kills the process at once with SIGKILL (``kill``, as a power cut or the OOM killer would) or
raises :class:`InjectedFault` (``raise``). ``REFVPS_FAULT_TRACE=<file>`` appends every point
reached to that file, so a test can list a writer's steps and then fail it at each one.
"""
from __future__ import annotations

import os
import signal

FAULT_ENV = "REFVPS_FAULT"
TRACE_ENV = "REFVPS_FAULT_TRACE"


class InjectedFault(Exception):
    """Raised at a checkpoint named by ``REFVPS_FAULT=<point>:raise``."""


def checkpoint(point: str) -> None:
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(point + "\n")
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, action = wanted.rpartition(":")
    if name != point:
        return
    if action == "kill":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    raise InjectedFault(f"fault injected at {point}")
