"""A finished evaluation loaded back from its outputs folder (summary.json + tables)."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from refvps.errors import RefvpsError


@dataclass
class Run:
    """One evaluation's summary, per-frame rows, per-unit rows and breakdown tables."""

    folder: Path
    summary: dict
    frames: pd.DataFrame
    units: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.summary.get("name") or self.folder.name

    @property
    def class_key(self) -> str | None:
        """The column averaged first (class-averaged benchmarks); None for plain unit means."""
        key = self.summary.get("class_key")
        return key if key and key in self.units.columns else None

    @property
    def unit_weight(self) -> str | None:
        """The column weighting units in dataset means (None: every unit weighs 1)."""
        key = self.summary.get("unit_weight")
        return key if key and key in self.units.columns else None

    @property
    def cluster_key(self) -> str:
        """The benchmark's top-level unit, resampled as a whole: the class, else the video."""
        return self.class_key or "video"

    @property
    def group_key(self) -> str:
        """The column per-group tables use: the class, else the concept, else the video."""
        if self.class_key:
            return self.class_key
        if "concept" in self.units.columns and self.units["concept"].notna().any():
            return "concept"
        return "video"

    @property
    def headline(self) -> list[str]:
        return [m for m in self.summary.get("headline", ["J"]) if m in self.units.columns]


_ID_DTYPES = {"unit": str, "video": str, "query_id": str, "frame": str, "exp_id": str,
              "object_id": str}
"""Id columns stay text: a video "00012" or a frame "00000" must not come back as the integer."""


def _parse_lists(table: pd.DataFrame) -> pd.DataFrame:
    """List-valued columns (e.g. concept_groups) come back from CSV as "['a', 'b']" strings."""
    for column in table.columns:
        values = table[column].dropna()
        if not pd.api.types.is_numeric_dtype(values) and len(values) and values.map(
                lambda v: isinstance(v, str) and v.startswith("[") and v.endswith("]")).all():
            table[column] = table[column].map(
                lambda v: ast.literal_eval(v) if isinstance(v, str) else [])
    return table


def load_run(folder: str | Path) -> Run:
    """Read ``summary.json``, ``frames.csv``, ``<unit>s.csv`` and the breakdown tables."""
    folder = Path(folder)
    summary_path = folder / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RefvpsError(f"{summary_path}: not found (not an evaluation outputs folder)") from None
    except json.JSONDecodeError as exc:
        raise RefvpsError(f"{summary_path}: malformed JSON ({exc})") from None
    unit_file = f"{summary.get('unit_name', 'query')}s.csv"
    names = {Path(p).name for p in summary.get("files", {}).values()}
    names |= {"frames.csv", unit_file}
    tables = {}
    for name in sorted(names - {"summary.json"}):
        path = folder / name
        if not path.is_file():
            raise RefvpsError(f"{path}: missing (listed in {summary_path})")
        tables[path.stem] = _parse_lists(pd.read_csv(path, keep_default_na=True,
                                                     dtype=_ID_DTYPES))
    frames = tables.pop("frames")
    units = tables.pop(Path(unit_file).stem)
    return Run(folder, summary, frames, units, tables)
