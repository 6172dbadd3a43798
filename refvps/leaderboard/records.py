"""Run records: one JSON file per ``refvps eval`` run in a results store.

Store layout (``--results DIR``, else ``$REFVPS_RESULTS``, else ``<user data dir>/results``)::

    <store>/runs/<run_id>/record.json     # the record (written atomically)
    <store>/runs/<run_id>/frames.csv ...  # the eval outputs, when ``--out`` was not given

A record names where the run's per-frame table and summary live, so reports and comparisons can
reload the run later; listing the store never fails on a bad record, it reports it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from refvps.errors import RefvpsError

RESULTS_ENV = "REFVPS_RESULTS"
RUNS_DIR = "runs"
RECORD_FILE = "record.json"
RECORD_VERSION = 1
REQUIRED_KEYS = ("run_id", "name", "benchmark", "split", "metrics", "outputs", "created")


def results_root(results: str | Path | None = None) -> Path:
    """The results store: ``results``, else ``$REFVPS_RESULTS``, else the per-user default."""
    from refvps.datapaths import user_data_dir

    if results:
        return Path(results).expanduser()
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser()
    return user_data_dir() / "results"


@dataclass
class RunRecord:
    """What the store knows about one evaluation run."""

    run_id: str
    name: str
    benchmark: str
    split: str
    metrics: dict
    outputs: str                   # folder holding summary.json, frames.csv and the tables
    created: str
    protocol: str = ""
    refvps_version: str = ""
    data_fingerprint: str = ""
    headline: list = field(default_factory=list)
    unit_name: str = "query"
    class_key: str | None = None
    predictions: str = ""
    predictions_digest: str = ""   # sha256 over the predictions' files (see predictions_digest)
    options: dict = field(default_factory=dict)
    frames_table: str = ""
    path: Path | None = None       # the record file it was read from

    @property
    def identity(self) -> tuple:
        """Runs with equal identity scored the same predictions on the same data the same way;
        a record without a predictions digest (older refvps) is its own identity."""
        if not self.predictions_digest:
            return ("run", self.run_id)
        scoring = {k: v for k, v in self.options.items() if k != "executor"}
        return (self.benchmark, self.split, self.protocol, self.predictions_digest,
                self.data_fingerprint, json.dumps(scoring, sort_keys=True))

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "path"}
        data["record_version"] = RECORD_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> "RunRecord":
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"missing key(s) {', '.join(missing)}")
        if not isinstance(data["metrics"], dict):
            raise ValueError("'metrics' is not an object")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "path"}
        return cls(**known, path=path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"


def new_run_id(name: str, benchmark: str) -> str:
    """``<UTC time>-<benchmark>-<name>-<random>``: sortable by time (to the millisecond: runs
    a second apart are common), unique, filesystem-safe."""
    now = datetime.now(timezone.utc)
    stamp = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z"
    return f"{stamp}-{_slug(benchmark)}-{_slug(name)}-{secrets.token_hex(3)}"


def check_store(results: str | Path | None = None) -> Path:
    """The runs folder of the results store, checked writable (before a run is scored)."""
    from refvps.fileio import OutputError

    runs = results_root(results) / RUNS_DIR
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=runs):
            pass
    except OSError as exc:
        raise OutputError(f"results store {runs.parent}: cannot write there "
                          f"({exc.strerror or exc}); choose another with --results or "
                          f"${RESULTS_ENV}, or pass --no-record") from None
    return runs


def save_record(result, results: str | Path | None = None) -> RunRecord:
    """Record ``result`` (an :class:`~refvps.evaluation.EvalResult`) in the results store.

    When the result has not been written anywhere yet, its outputs go into the run's folder in
    the store, so the per-frame table is always kept for later reports. The run's folder
    (record, and outputs if any) appears as one set, by one rename.
    """
    from refvps.fileio import OutputFolder, jsonable

    summary = result.summary
    run_id = new_run_id(summary["name"], summary["benchmark"])
    run_dir = check_store(results) / run_id
    with OutputFolder(run_dir, "run folder") as folder:
        files = summary.get("files") or result.write_files(folder.staging, folder.path)
        record = RunRecord(
            run_id=run_id, name=summary["name"], benchmark=summary["benchmark"],
            split=summary["split"], metrics=jsonable(summary["metrics"]),
            outputs=str(Path(files["summary"]).parent), created=summary["created"],
            protocol=summary.get("protocol", ""), refvps_version=summary.get("refvps_version", ""),
            data_fingerprint=summary.get("data_fingerprint", ""),
            headline=list(summary.get("headline", [])), unit_name=summary.get("unit_name", "query"),
            class_key=summary.get("class_key"), predictions=summary.get("predictions", ""),
            predictions_digest=predictions_digest(summary.get("predictions", "")),
            options=dict(summary.get("options", {})),
            frames_table=files["frames"], path=run_dir / RECORD_FILE)
        (folder.staging / RECORD_FILE).write_text(json.dumps(record.to_dict(), indent=2) + "\n",
                                                  encoding="utf-8")
        folder.commit()
    return record


def predictions_digest(path: str | Path) -> str:
    """sha256 over a predictions .zip's bytes, or over every file of a predictions folder (its
    relative path and the sha256 of its bytes, in sorted order); "" when ``path`` is gone."""
    path = Path(path) if path else None
    if path is None or not path.exists():
        return ""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(b"zip\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            file = Path(folder) / name
            digest.update(f"{file.relative_to(path).as_posix()}\0".encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def latest_per_identity(records: list[RunRecord]) -> tuple[list[RunRecord], dict[str, str]]:
    """The most recent record of each identity (``records`` oldest first), and for every older
    duplicate the run id of the record that supersedes it."""
    latest: dict[tuple, RunRecord] = {}
    for record in records:
        latest[record.identity] = record
    superseded = {r.run_id: latest[r.identity].run_id for r in records
                  if latest[r.identity] is not r}
    kept = [r for r in records if r.run_id not in superseded]
    return kept, superseded


def read_record(path: Path) -> RunRecord:
    """One record file; ValueError says what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return RunRecord.from_dict(data, path)


def list_records(results: str | Path | None = None) -> tuple[list[RunRecord], list[str]]:
    """Every readable record, oldest first, and one warning line per unreadable record file."""
    runs = results_root(results) / RUNS_DIR
    records, warnings = [], []
    for path in sorted(runs.glob(f"*/{RECORD_FILE}")) if runs.is_dir() else []:
        try:
            records.append(read_record(path))
        except (OSError, ValueError, TypeError) as exc:
            warnings.append(f"skipped corrupt run record {path}: {exc}")
    records.sort(key=lambda r: (r.created, r.run_id))
    return records, warnings


def resolve_run(ref: str | Path, results: str | Path | None = None) -> Path:
    """The outputs folder of run ``ref``: a folder with summary.json, a run folder of the store,
    a run id (or a unique prefix of one), or a run name (the most recent run of that name)."""
    path = Path(ref).expanduser()
    if (path / "summary.json").is_file():
        return path
    if (path / RECORD_FILE).is_file():
        return Path(read_record(path / RECORD_FILE).outputs)
    records, _ = list_records(results)
    matches = [r for r in records if r.run_id == str(ref)]
    matches = matches or [r for r in records if r.run_id.startswith(str(ref))]
    if len(matches) > 1:
        raise RefvpsError(f"run id prefix {ref!r} is ambiguous: "
                          f"{', '.join(r.run_id for r in matches[:5])}")
    matches = matches or [r for r in records if r.name == str(ref)]
    if not matches:
        raise RefvpsError(f"no run {ref!r}: not a folder with summary.json, and no run id or name "
                          f"in the results store {results_root(results)} "
                          f"(list them with: refvps runs)")
    outputs = Path(matches[-1].outputs)
    if not (outputs / "summary.json").is_file():
        raise RefvpsError(f"run {matches[-1].run_id}: its outputs folder {outputs} has no "
                          f"summary.json (moved or deleted?)")
    return outputs
