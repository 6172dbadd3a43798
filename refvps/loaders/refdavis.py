"""Ref-DAVIS17: DAVIS-2017 unsupervised annotations scored per annotator run (docs/benchmarks/ref-davis.md).

Data (under ``<data root>/ref-davis/``, or ``--data`` pointing at that folder or at a DAVIS
folder itself), either form or both:

* raw: ``DAVIS/ImageSets/2017/<split>.txt``, ``DAVIS/Annotations_unsupervised/480p/<seq>/*.png``
  (optional ``DAVIS/JPEGImages/480p``, ``DAVIS/davis_semantics.json``) and
  ``davis_text_annotations/Davis17_annot{1,2}{,_full_video}.txt``;
* converted by ReferFormer: ``valid/Annotations/<seq>/*.png`` (the unsupervised annotations),
  ``meta_expressions/valid/meta_expressions.json`` (optional ``valid/meta.json``).

Protocol (davis2017-evaluation unsupervised, run once per annotator run ``anno_0..anno_3``):
GT objects = ids 1..max(first GT frame) after void (255) removal; proposals = ids 1..max over
all predicted frames (or the per-object folders 1..K); at most 20 proposals; zero padding;
every frame; J and F with void; Hungarian matching on mean (J+F)/2; per matched object
mean / recall / decay; per run the mean over all objects of all sequences; final = mean of the
runs. Expressions never enter the score; they label the per-object rows.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from refvps.errors import MaskError, Problem, RefvpsError
from refvps.formats import (DAVIS_FOLDER, DAVIS_IMAGESETS_DIR, DAVIS_MAX_PROPOSALS,
                            DAVIS_RESOLUTION, DAVIS_SEMANTICS, DAVIS_TEXT_DIR,
                            DAVIS_UNSUPERVISED_DIR, FRAME_EXT, IGNORE_LABEL, JPEG_DIR, MASK_EXT,
                            META_EXPRESSIONS, REFDAVIS_CONVERTED_SPLITS, REFDAVIS_FOLDER,
                            REFDAVIS_META_DIR, REFDAVIS_RUNS, ANNOTATION_DIR, refdavis_run_dir)
from refvps.loaders.base import (Benchmark, GroundTruth, Query, TaskResult, VideoTask,
                                 group_means, read_digested)
from refvps.inputs import check_png, read_file
from refvps.loaders.jsonfiles import JsonChecker, read_json_object, read_name_list, show
from refvps.loaders.davis_unsupervised import Mask, PairScores, make_mask
from refvps.loaders.refdavis_predictions import run_layouts, too_many_proposals
from refvps.loaders.refdavis_text import (RunExpression, convert_expressions, read_converted,
                                          read_text_annotations, run_expressions)
from refvps.metrics import (boundary_radius, decay_with_check, jf_score, sequence_mean,
                            sequence_recall, temporal_consistency)

MISLABEL_NOTE = ("per-object rows are keyed by the ground-truth object each proposal was matched "
                 "to; the official per-sequence CSV names them <seq>_<i> in proposal order "
                 "instead (that label is kept in the objects table as 'official_label')")


class _SequenceGT(GroundTruth):
    """The unsupervised annotation of one sequence, decoded once and shared by all its runs."""

    def __init__(self, video: str, gt_dir: Path, frames: Sequence[str]):
        self.video = video
        self.gt_dir = gt_dir
        self.frames = list(frames)
        self.digests: dict[str, str] = {}
        self.n_objects: int = 0
        self.shape: tuple[int, int] | None = None
        self.areas: list[list[int]] = []       # [t][object index], void excluded
        self.void_areas: list[int] = []

    def labels(self, frame: str) -> np.ndarray:
        """Label map of ``frame``; the first frame read fixes the shape and the object count."""
        if self.shape is None and frame != self.frames[0]:
            self.labels(self.frames[0])
        path = self.gt_dir / f"{frame}{MASK_EXT}"
        labels = read_digested(path, self.digests, f"{self.video}/{frame}{MASK_EXT}")
        if self.shape is None:
            self.shape = labels.shape
            self.n_objects = int(np.where(labels == IGNORE_LABEL, 0, labels).max(initial=0))
        elif labels.shape != self.shape:
            raise MaskError(path, f"size {labels.shape[1]}x{labels.shape[0]} (WxH) differs from "
                                  f"the sequence's first frame {self.shape[1]}x{self.shape[0]}")
        return labels

    def objects(self, frame: str) -> tuple[list[Mask | None], np.ndarray | None]:
        """GT objects 1..n of ``frame`` (None = absent) and its void mask (None = no void).

        Call once per frame in order: it records the areas used by the per-frame rows.
        """
        labels = self.labels(frame)
        void = labels == IGNORE_LABEL
        objects = [make_mask(labels == k) for k in range(1, self.n_objects + 1)]
        self.areas.append([0 if m is None else m.area for m in objects])
        n_void = int(np.count_nonzero(void))
        self.void_areas.append(n_void)
        return objects, (void if n_void else None)

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, np.ndarray | None]:
        labels = self.labels(frame)
        void = labels == IGNORE_LABEL
        return (labels > 0) & (labels <= self.n_objects), (void if void.any() else None)


class RefDavis(Benchmark):
    name = "ref-davis"
    folder = REFDAVIS_FOLDER
    title = "Ref-DAVIS17 (DAVIS-2017 with Khoreva et al. referring expressions)"
    splits = ("val", "train")
    default_split = "val"
    protocol = ("davis2017 unsupervised per annotator run anno_0..anno_3: GT objects 1..max(first "
                "frame), <= 20 proposals, zero padding, all frames, void 255 excluded, Hungarian "
                "matching on mean (J+F)/2; per run J and F = mean over all objects of all "
                "sequences, J&F = (J+F)/2; final = mean over the runs. " + MISLABEL_NOTE)
    reference = ("davisvideochallenge/davis2017-evaluation unsupervised (as run by wjn922/ReferFormer "
                 "eval_davis.py); miccooper9/ReferEverything fork for per-object folders; the "
                 "4-run mean as in REM")
    unit_name = "run-sequence"
    unit_weight = "n_objects"  # the protocol averages over objects, not run-sequences

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017",
                 runs: Sequence[int] | None = None):
        super().__init__(root, split, decay_mode)
        self.runs_given = runs is not None
        runs = tuple(range(len(REFDAVIS_RUNS))) if runs is None else tuple(runs)
        bad = [r for r in runs if r not in range(len(REFDAVIS_RUNS))]
        if bad or not runs:
            raise ValueError(f"{self.name}: runs must be a non-empty subset of 0..3, got {runs}")
        self.runs = tuple(sorted(set(runs)))
        self.single_run = False  # predictions are one run folder's contents (<seq>/...)
        self.davis_dir = _davis_dir(self.root)
        converted = REFDAVIS_CONVERTED_SPLITS[self.split]
        self.converted_dir = self.root / converted
        self.converted_meta = self.root / REFDAVIS_META_DIR / converted / META_EXPRESSIONS
        text_dirs = [self.root / DAVIS_TEXT_DIR]
        if self.davis_dir == self.root:
            text_dirs.append(self.root.parent / DAVIS_TEXT_DIR)
        self.text_dir = next((d for d in text_dirs if d.is_dir()), None)
        self._frames: dict[str, list[str]] = {}
        self._expressions: dict | None = None
        self._expression_problems: list[Problem] = []

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return _davis_dir(path) is not None or (path / REFDAVIS_META_DIR).is_dir()

    # --- layout ----------------------------------------------------------------------------
    def split_file(self) -> Path | None:
        if self.davis_dir is None:
            return None
        return self.davis_dir / DAVIS_IMAGESETS_DIR / f"{self.split}.txt"

    def sequences(self) -> list[str]:
        """The split's sequences: the DAVIS ImageSets list, else the converted JSON's videos."""
        split_file = self.split_file()
        if split_file is not None and os.path.lexists(split_file):
            return read_name_list(split_file, [], "sequence") or []
        if self.converted_meta.is_file():
            videos, _ = read_converted(self.converted_meta)
            return list(videos)
        return []

    def gt_dir(self, seq: str) -> Path:
        """Unsupervised annotations of ``seq``: raw DAVIS if present, else the converted tree."""
        if self.davis_dir is not None:
            raw = self.davis_dir / DAVIS_UNSUPERVISED_DIR / DAVIS_RESOLUTION / seq
            if raw.is_dir() or not (self.converted_dir / ANNOTATION_DIR / seq).is_dir():
                return raw
        return self.converted_dir / ANNOTATION_DIR / seq

    def jpeg_dir(self, seq: str) -> Path:
        if self.davis_dir is not None:
            raw = self.davis_dir / JPEG_DIR / DAVIS_RESOLUTION / seq
            if raw.is_dir():
                return raw
        return self.converted_dir / JPEG_DIR / seq

    def gt_frames(self, seq: str) -> list[str]:
        """Frame stems of ``seq``: its annotation PNGs, sorted (the official frame list)."""
        if seq not in self._frames:
            folder = self.gt_dir(seq)
            self._frames[seq] = sorted(p.stem for p in folder.glob(f"*{MASK_EXT}")) \
                if folder.is_dir() else []
        return self._frames[seq]

    def metadata_files(self) -> list[Path]:
        files = [f for f in (self.split_file(), self.converted_meta, self._semantics_file()) if f]
        if self.text_dir is not None:
            files += [self.text_dir / name for name, *_ in REFDAVIS_RUNS]
        return files

    def _semantics_file(self) -> Path | None:
        if self.davis_dir is not None and (self.davis_dir / DAVIS_SEMANTICS).is_file():
            return self.davis_dir / DAVIS_SEMANTICS
        meta = self.converted_dir / "meta.json"
        return meta if meta.is_file() else None

    # --- expressions (labels only; the protocol never uses them) -----------------------------
    def expression_source(self) -> str:
        if self.text_dir is not None:
            return f"raw text files in {self.text_dir}"
        if self.converted_meta.is_file():
            return f"converted {self.converted_meta}"
        return "none found"

    def expressions(self) -> dict[tuple[str, int, int], RunExpression]:
        """``(sequence, run, obj_id) -> RunExpression`` from the text files or the converted JSON."""
        if self._expressions is None:
            if self.text_dir is not None:
                runs, self._expression_problems = read_text_annotations(self.text_dir)
                videos = convert_expressions(runs, self.sequences())["videos"]
            elif self.converted_meta.is_file():
                videos, self._expression_problems = read_converted(self.converted_meta)
            else:
                videos = {}
            self._expressions = run_expressions(videos)
        return self._expressions

    def categories(self) -> dict[tuple[str, int], str]:
        """``(sequence, obj_id) -> category`` from davis_semantics.json or the converted meta.json."""
        path = self._semantics_file()
        if path is None:
            return {}
        data = read_json_object(path, [])
        if data is None:
            return {}
        if path.name == "meta.json":
            videos = data.get("videos")
            data = {seq: {k: v.get("category") for k, v in rec["objects"].items()
                          if isinstance(v, dict)}
                    for seq, rec in (videos.items() if isinstance(videos, dict) else ())
                    if isinstance(rec, dict) and isinstance(rec.get("objects"), dict)}
        return {(seq, int(k)): str(v) for seq, objs in data.items() if isinstance(objs, dict)
                for k, v in objs.items() if str(k).isdigit()}

    def _validate_metadata(self, problems: list[Problem]) -> None:
        """The optional category file and the converted expressions: readable and typed."""
        path = self._semantics_file()
        if path is not None:
            data = read_json_object(path, problems)
            check = JsonChecker(path, problems)
            if data is not None and path.name == "meta.json":
                videos = check.object(data.get("videos"), ("videos",)) or {}
                for seq, rec in videos.items():
                    if check.object(rec, ("videos", seq)) is not None:
                        check.object(rec.get("objects", {}), ("videos", seq, "objects"))
            elif data is not None:
                for seq, objects in data.items():
                    check.object(objects, (seq,))
        if self.text_dir is None and self.converted_meta.is_file():
            videos, _ = read_converted(self.converted_meta)
            check = JsonChecker(self.converted_meta, problems)
            for seq, record in videos.items():
                if check.object(record, ("videos", seq)) is None:
                    continue
                expressions = check.object(record.get("expressions"), ("videos", seq,
                                                                        "expressions"))
                for exp_id, exp in (expressions or {}).items():
                    keys = ("videos", seq, "expressions", exp_id)
                    if check.object(exp, keys) is not None and \
                            not str(exp.get("obj_id", "")).strip().isdigit():
                        check.fail((*keys, "obj_id"), f"must be an integer string, got "
                                                      f"{show(exp.get('obj_id'))}")

    # --- validation -------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        if self.davis_dir is None and not self.converted_meta.is_file():
            return [Problem(str(self.root), "no Ref-DAVIS data: expected DAVIS/ImageSets/2017 and "
                            "DAVIS/Annotations_unsupervised/480p (raw), or "
                            f"{REFDAVIS_META_DIR}/{self.converted_dir.name}/{META_EXPRESSIONS} and "
                            f"{self.converted_dir.name}/{ANNOTATION_DIR} (converted by ReferFormer)")]
        problems: list[Problem] = []
        split_file = self.split_file()
        if split_file is not None and os.path.lexists(split_file):
            read_name_list(split_file, problems, "sequence")
        if not self.sequences():
            where = split_file if split_file is not None else self.converted_meta
            problems.append(Problem(str(where), f"no sequences for split {self.split!r}"))
        for seq in self.sequences():
            problems += self._validate_sequence(seq)
        self.expressions()
        problems += self._expression_problems
        self._validate_metadata(problems)
        return problems

    def _validate_sequence(self, seq: str) -> list[Problem]:
        folder = self.gt_dir(seq)
        frames = self.gt_frames(seq)
        if not frames:
            return [Problem(str(folder), "no annotation PNGs" if folder.is_dir()
                            else "annotation folder not found")]
        problems, size = [], None
        for frame in frames:
            path = folder / f"{frame}{MASK_EXT}"
            try:
                header = check_png(read_file(path, head=64), str(path))
            except MaskError as exc:
                problems.append(Problem(exc.path, exc.what))
                continue
            frame_size = (header.width, header.height)
            if header.color_type not in (0, 3) or header.bit_depth > 8:
                problems.append(Problem(str(path), f"{header.bit_depth}-bit {header.color} PNG; "
                                                   "annotations must be 8-bit palette ('P') or "
                                                   "grayscale ('L') PNGs"))
            size = size or frame_size
            if frame_size != size:
                problems.append(Problem(str(path), f"size {frame_size[0]}x{frame_size[1]} (WxH) "
                                                   f"differs from the first frame's "
                                                   f"{size[0]}x{size[1]}"))
        jpegs = self.jpeg_dir(seq)
        if jpegs.is_dir():
            unannotated = sorted({p.stem for p in jpegs.glob(f"*{FRAME_EXT}")} - set(frames))
            if unannotated:
                problems.append(Problem(str(folder), f"{len(unannotated)} frame(s) of {jpegs} have "
                                                     f"no annotation, e.g. {unannotated[0]} (the "
                                                     "official evaluator cannot score them)"))
        return problems

    # --- tasks ------------------------------------------------------------------------------
    def tasks(self) -> list[VideoTask]:
        """One task per sequence holding all its runs, so its annotation is decoded once."""
        tasks = []
        for seq in self.sequences():
            frames = tuple(self.gt_frames(seq))
            queries = [Query(video=seq, query_id=refdavis_run_dir(run), text="", frames=frames,
                             meta={"run": run}) for run in self.runs]
            tasks.append(VideoTask(seq, queries, gt=self.gt_dir(seq)))
        return tasks

    def load_gt(self, task: VideoTask) -> _SequenceGT:
        return _SequenceGT(task.video, Path(task.gt), task.queries[0].frames)

    def frame_path(self, video: str, frame: str) -> Path:
        return self.jpeg_dir(video) / f"{frame}{FRAME_EXT}"

    def run_base(self, run_dir: str, seq: str) -> str:
        """The folder of one run's predictions of ``seq``: ``anno_<k>/<seq>``, or ``<seq>`` when
        the predictions are a single run folder (as the official evaluator reads them)."""
        return seq if self.single_run else f"{run_dir}/{seq}"

    def prediction_relpath(self, query: Query, frame: str) -> str:
        """Indexed layout (ReferFormer): ``anno_<k>/<seq>/<frame>.png``."""
        return f"{self.run_base(query.query_id, query.video)}/{frame}{MASK_EXT}"

    def bind_predictions(self, store) -> None:
        """Recognise a single annotator run folder (``--preds .../anno_0``): sequence folders at
        its top and no ``anno_<k>`` folder. Its run comes from its name or from ``runs``."""
        tops = {f.split("/", 1)[0] for f in store.raw_files() if "/" in f}
        run_dirs = {refdavis_run_dir(r): r for r in range(len(REFDAVIS_RUNS))}
        if tops & set(run_dirs) or not tops & set(self.sequences()):
            return
        named = run_dirs.get(store.path.name.removesuffix(".zip"))
        if self.runs_given and (len(self.runs) != 1 or named not in (None, self.runs[0])):
            raise RefvpsError(f"{store.path} holds the predictions of one annotator run"
                              f"{f' ({refdavis_run_dir(named)})' if named is not None else ''}; "
                              f"--runs must name that one run, got {list(self.runs)}")
        if not self.runs_given:
            if named is None:
                raise RefvpsError(f"{store.path} holds the predictions of one annotator run; say "
                                  "which with --runs K (0..3; runs=(K,) in Python)")
            self.runs = (named,)
        self.single_run = True

    def tolerated_prediction_paths(self) -> list[str]:
        """Folders of the runs not selected by ``runs`` may sit beside the scored ones."""
        if self.single_run:
            return []
        return [f"{refdavis_run_dir(run)}/{seq}/{MASK_EXT}" for run in range(len(REFDAVIS_RUNS))
                if run not in self.runs for seq in self.sequences()]

    def required_predictions(self, store, tasks: list[VideoTask]) -> list[str]:
        """Every frame of every run: one indexed PNG, or one PNG in each per-object folder."""
        probes = [path for t in tasks for q in t.queries[:1] for f in q.frames[:1]
                  for path in (self.prediction_relpath(q, f),
                               f"{self.run_base(q.query_id, t.video)}/1/{f}.png")]
        store.adapt_prefix(probes)
        layouts = run_layouts(store, tasks, self.run_base)
        return [path for t in tasks for q in t.queries for f in q.frames
                for path in layouts[(q.query_id, t.video)].relpaths(f)]

    def units_table(self) -> pd.DataFrame:
        rows = []
        for q in self.queries():
            _name, _encoding, annotator, kind = REFDAVIS_RUNS[q.meta["run"]]
            rows.append({"unit": q.unit, "video": q.video, "run": q.query_id,
                         "annotator": annotator, "expression_kind": kind})
        return pd.DataFrame(rows, columns=["unit", "video", "run", "annotator", "expression_kind"])

    def notes(self) -> list[str]:
        notes = [MISLABEL_NOTE, f"expressions (labels only, never scored): "
                                f"{self.expression_source()}"]
        empty = [seq for seq in self.sequences() if self.gt_frames(seq)
                 and _first_frame_objects(self.gt_dir(seq), self.gt_frames(seq)[0]) == 0]
        if empty:
            notes.append(f"{len(empty)} sequence(s) with an empty first annotation frame "
                         f"contribute no objects (official rule): {', '.join(empty)}")
        return notes

    # --- scoring (runs in workers) ------------------------------------------------------------
    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        """Score every run of one sequence, frame by frame, decoding its annotation once."""
        gt = self.load_gt(task)
        layouts = run_layouts(reader, [task], self.run_base)
        problems: list[Problem] = []
        runs = []
        for query in task.queries:
            layout = layouts[(query.query_id, task.video)]
            if layout.problem:
                problems.append(Problem(reader.describe(layout.base), layout.problem))
            elif layout.per_object and len(layout.folders) > DAVIS_MAX_PROPOSALS:
                problems.append(Problem(reader.describe(layout.base), too_many_proposals(
                    task.video, f"{len(layout.folders)} per-object folders")))
            else:
                runs.append((query, layout))
        missing_files = 0
        scores: dict[str, PairScores] = {}
        for t, frame in enumerate(gt.frames):
            try:
                objects, void = gt.objects(frame)
            except MaskError as exc:
                return TaskResult([], problems + [Problem(exc.path, exc.what)], 0, gt.digests)
            keep = None if void is None else ~void
            for query, layout in list(runs):
                if query.query_id not in scores:
                    scores[query.query_id] = PairScores(gt.n_objects, len(gt.frames), gt.shape,
                                                        boundary_radius(gt.shape))
                found = layout.read(reader, frame, gt.shape, keep)
                if isinstance(found, Problem):
                    problems.append(found)
                    runs.remove((query, layout))
                    continue
                proposals, n_ids, missing = found
                missing_files += len(missing) if layout.per_object else int(bool(missing))
                if missing and not allow_missing:
                    runs.remove((query, layout))  # reported by the presence check
                    continue
                pair_scores = scores[query.query_id]
                pair_scores.n_proposals = max(pair_scores.n_proposals, n_ids)
                pair_scores.add_frame(t, objects, proposals,
                                      missing if layout.per_object else bool(missing))
        rows = []
        for query, _layout in runs:
            rows += _match_rows(query, gt, scores[query.query_id])
        return TaskResult(rows, problems, missing_files, dict(gt.digests))

    # --- protocol ---------------------------------------------------------------------------
    def object_scores(self, frames: pd.DataFrame) -> pd.DataFrame:
        """One row per (run, sequence, matched GT object): davis2017 db_statistics of J and F."""
        if frames.empty:
            return pd.DataFrame(columns=["unit", "video", "run", "object", "proposal", "rank",
                                         "J", "F", "J&F"])
        order = {seq: i for i, seq in enumerate(self.sequences())}
        rows = []
        for (unit, obj), group in frames.groupby(["unit", "object"], sort=False):
            j, f = group["J"].to_numpy(np.float64), group["F"].to_numpy(np.float64)
            label = f"{unit} object {obj}"
            first = group.iloc[0]
            rows.append({
                "unit": unit, "video": first["video"], "run": first["query_id"], "object": obj,
                "proposal": int(first["proposal"]), "rank": int(first["rank"]),
                "official_label": f"{first['video']}_{int(first['rank']) + 1}",
                "seq_index": order.get(first["video"], len(order)),
                "J": sequence_mean(j), "J_recall": sequence_recall(j),
                "J_decay": decay_with_check(j, self.decay_mode, label),
                "F": sequence_mean(f), "F_recall": sequence_recall(f),
                "F_decay": decay_with_check(f, self.decay_mode, label),
                "TC": temporal_consistency(j), "n_frames": int(len(group)),
                "missing_frames": int(group["pred_missing"].sum()),
                "empty_pred_rate": float(np.mean(group["pred_area"].to_numpy() == 0)),
            })
        table = pd.DataFrame(rows)
        table["J&F"] = jf_score(table["J"], table["F"])
        # The official lists: sequences in split order, objects in proposal (row_ind) order.
        return table.sort_values(["run", "seq_index", "rank"], kind="stable").reset_index(drop=True)

    def unit_scores(self, frames: pd.DataFrame) -> pd.DataFrame:
        objects = self.object_scores(frames)
        if objects.empty:
            return pd.DataFrame(columns=["unit", "n_objects", "J", "F", "J&F", "missing_frames"])
        grouped = objects.groupby("unit", sort=False)
        units = grouped[["J", "J_recall", "J_decay", "F", "F_recall", "F_decay", "J&F", "TC",
                         "empty_pred_rate"]].mean()
        units.insert(0, "n_objects", grouped.size())
        units["n_frames"] = grouped["n_frames"].first()
        units["missing_frames"] = grouped["missing_frames"].sum()
        return units.reset_index()

    def aggregate(self, frames: pd.DataFrame, units: pd.DataFrame) -> tuple[dict, dict]:
        objects = self._labelled_objects(self.object_scores(frames))
        run_rows = []
        for run in self.runs:
            name = refdavis_run_dir(run)
            subset = objects[objects["run"] == name] if len(objects) else objects
            _file, _encoding, annotator, kind = REFDAVIS_RUNS[run]
            row = {"run": name, "annotator": annotator, "expression_kind": kind,
                   "n_units": int(len(subset))}
            for key in ("J", "J_recall", "J_decay", "F", "F_recall", "F_decay", "TC",
                        "empty_pred_rate"):
                values = subset[key].to_numpy(np.float64) if len(subset) else np.empty(0)
                row[key] = _official_mean(values, nan_aware=key == "TC")
            row["J&F"] = jf_score(row["J"], row["F"])
            row["swapped"] = int(subset["swapped"].sum()) if len(subset) else 0
            run_rows.append(row)
        runs = pd.DataFrame(run_rows)
        metrics = {key: _mean_over_runs(runs[key].to_numpy(np.float64))
                   for key in ("J&F", "J", "F", "J_recall", "J_decay", "F_recall", "F_decay",
                               "TC", "empty_pred_rate")}
        metrics["TC_units"] = int(objects["TC"].notna().sum()) if len(objects) else 0
        metrics["objects_per_run"] = int(runs["n_units"].max()) if len(runs) else 0
        metrics["swapped"] = int(runs["swapped"].sum())
        for row in run_rows:
            for key in ("J&F", "J", "F"):
                metrics[f"{key}/{row['run']}"] = row[key]
        videos = group_means(objects, "video", True) if len(objects) else pd.DataFrame()
        columns = ["run", "video", "object", "category", "expression", "proposal",
                   "expected_proposal", "swapped", "official_label", "J", "J_recall", "J_decay",
                   "F", "F_recall", "F_decay", "J&F", "TC", "n_frames", "missing_frames",
                   "empty_pred_rate"]
        return metrics, {"runs": runs, "objects": objects[columns] if len(objects) else objects,
                         "videos": videos}

    def _labelled_objects(self, objects: pd.DataFrame) -> pd.DataFrame:
        """Object rows with category, the run's expression and the proposal it was written to."""
        if objects.empty:
            return objects.assign(category=None, expression=None, expected_proposal=None,
                                  swapped=False)
        expressions, categories = self.expressions(), self.categories()
        keys = list(zip(objects["video"], objects["run"].map(lambda r: int(r.split("_")[1])),
                        objects["object"]))
        found = [expressions.get(key) for key in keys]
        objects = objects.copy()
        objects["category"] = [categories.get((v, o)) for v, _r, o in keys]
        objects["expression"] = [e.text if e else None for e in found]
        objects["expected_proposal"] = [e.expected_proposal if e else None for e in found]
        objects["swapped"] = [bool(e and p and e.expected_proposal != p)
                              for e, p in zip(found, objects["proposal"])]
        return objects


def _official_mean(values: np.ndarray, nan_aware: bool = False) -> float:
    """``np.mean`` over a list in the official order (``np.nanmean`` for refvps-only TC)."""
    if values.size == 0 or (nan_aware and np.all(np.isnan(values))):
        return float("nan")
    return float(np.nanmean(values) if nan_aware else np.mean(values))


def _mean_over_runs(values: np.ndarray) -> float:
    """REM's final score: a running float sum over the runs divided by their number."""
    total = 0.0
    for value in values:
        total += float(value)
    return total / len(values) if len(values) else float("nan")


def _match_rows(query: Query, gt: _SequenceGT, scores: PairScores) -> list[dict]:
    """Per-frame rows of the matched (proposal, GT object) pairs, keyed by the true GT object."""
    rows = []
    for rank, (p, o) in enumerate(scores.match()):
        proposal = p + 1 if p < scores.n_proposals else 0  # 0 = official zero padding
        for t, frame in enumerate(gt.frames):
            rows.append({"unit": query.unit, "video": query.video, "query_id": query.query_id,
                         "object": o + 1, "proposal": proposal, "rank": rank, "frame": frame,
                         "t": t, "J": float(scores.j[p, o, t]), "F": float(scores.f[p, o, t]),
                         "gt_area": gt.areas[t][o], "pred_area": int(scores.pred_area[p, t]),
                         "void_area": gt.void_areas[t], "pred_missing": bool(scores.missing[p, t])})
    return rows


def _first_frame_objects(gt_dir: Path, frame: str) -> int:
    """Number of GT objects of a sequence (official rule: max id of the first frame, no void)."""
    try:
        with Image.open(gt_dir / f"{frame}{MASK_EXT}") as image:
            labels = np.array(image)
    except OSError:
        return -1
    return int(np.where(labels == IGNORE_LABEL, 0, labels).max(initial=0))


def _davis_dir(path: Path) -> Path | None:
    """The DAVIS folder at or directly under ``path`` (it holds ImageSets or the annotations)."""
    for candidate in (path / DAVIS_FOLDER, path):
        if (candidate / DAVIS_IMAGESETS_DIR).is_dir() or (candidate / DAVIS_UNSUPERVISED_DIR).is_dir():
            return candidate
    return None
