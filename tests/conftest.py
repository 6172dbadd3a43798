import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from runs_fixtures import sample, sample_runs  # noqa: E402,F401  (shared session fixtures)


@pytest.fixture(autouse=True)
def _isolated_results_store(tmp_path, monkeypatch):
    """Runs recorded by `refvps eval` in tests go to a temporary store, never the user's."""
    monkeypatch.setenv("REFVPS_RESULTS", str(tmp_path / "results-store"))
