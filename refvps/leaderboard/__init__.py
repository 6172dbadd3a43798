"""Run records and published results, ranked together in one leaderboard."""
from refvps.leaderboard.records import (RunRecord, list_records, resolve_run, results_root,
                                        save_record)

__all__ = ["RunRecord", "list_records", "resolve_run", "results_root", "save_record"]
