import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from runs_fixtures import sample, sample_runs  # noqa: E402,F401  (shared session fixtures)


@pytest.fixture(autouse=True)
def _isolated_results_store(tmp_path, monkeypatch):
    """Runs recorded by `refvps eval` in tests go to a temporary store, never the user's."""
    monkeypatch.setenv("REFVPS_RESULTS", str(tmp_path / "results-store"))


@pytest.fixture
def pooled(monkeypatch):
    """Score the (small) test datasets on a real process pool when a test asks for workers:
    refvps scores a job under ``SMALL_JOB_FRAMES`` query-frames in one process, whatever the
    worker count."""
    monkeypatch.setattr("refvps.executors.SMALL_JOB_FRAMES", 0)


def pytest_collection_modifyitems(config, items):
    """`upstream` tests run only when REFVPS_UPSTREAM names a folder of upstream checkouts."""
    import os

    folder = os.environ.get("REFVPS_UPSTREAM", "")
    if folder and Path(folder).is_dir():
        return
    reason = ("upstream contract run: set REFVPS_UPSTREAM to a folder holding the upstream "
              "checkouts (ReferEverything/, VD-IT/, UniRef/, SOLA/)" if not folder else
              f"REFVPS_UPSTREAM={folder} is not a folder")
    for item in items:
        if "upstream" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
