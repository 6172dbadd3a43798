"""Export a workspace as one clip of a refvps-format 0.1 dataset: confined, locked, transactional.

Confined: the clip id must match ``formats.CLIP_ID_PATTERN`` (one plain folder name), so every
path written is ``<dataset>/<fixed folder>/<clip id>``; nothing outside the dataset is touched.
An existing clip is replaced only when asked (``replace=True``, ``--replace``).

Locked: one export at a time per dataset (``<dataset>/.refvps-export/lock``); a second one waits
for it, so concurrent exports all land.

Transactional: the loader scores the clips listed in ``splits/test.txt``; the split entry is
what makes a clip visible, so it is written last, after the clip's files and metadata, and, when
a listed clip is replaced, removed first. Every step is one atomic rename:

1. write the new files (frames, annotations, provenance) into ``.refvps-export/``;
2. write a journal ``.refvps-export/journal.json`` (what is being exported, what was listed);
3. replacing a listed clip: rewrite the split without it;
4. for each of the clip's frame folder, annotation folder and provenance file: move the old one
   aside into ``.refvps-export/``, rename the new one in;
5. ``concepts.json`` (it only gains entries), then ``meta_expressions.json``;
6. mark the journal committed; 7. rewrite the split with the clip; 8. drop the journal and the
   old files.

So a reader sees the previous version of the clip, then (while it is replaced) no clip of that
name, then the new version, never a split entry without its files or with a mix. A crash at
any step leaves a dataset the loader accepts; the next export into it (or
:func:`recover_dataset`) then finishes the job from the journal: back to the previous version
when the crash came before step 6, forward to the new one after it.
"""
from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from refvps.annotate.storage import atomic_write_bytes, atomic_write_json
from refvps.annotate.workspace import Workspace
from refvps.errors import Problem, RefvpsError, ValidationError
from refvps.faults import checkpoint
from refvps.formats import (ANNOTATION_DIR, CONCEPT_GROUPS, CONCEPTS_FILE, EXPRESSIONS_PER_CLIP,
                            JPEG_DIR, META_EXPRESSIONS, PROVENANCE_DIR, REFVPS_ANNO_FPS,
                            REFVPS_FOLDER, REFVPS_FORMAT_FILE, REFVPS_FORMAT_ID,
                            REFVPS_FORMAT_TEXT, SPLITS_DIR, clip_id_problem)
from refvps.locks import ProcessLock
from refvps.masks import write_label_mask

SPLIT = "test"
WORK_DIR = ".refvps-export"
"""Inside the dataset folder: the export lock, the journal and staged or replaced files."""
LOCK_WAIT_S = 600.0
"""How long an export waits for another export into the same dataset to finish."""


class ClipExistsError(RefvpsError):
    """The dataset already has a clip of that id and replacing it was not asked for."""


def dataset_folder(root: str | Path) -> Path:
    """``root`` itself when it is a Ref-VPS folder, else ``root/ref-vps``."""
    root = Path(root)
    if (root / META_EXPRESSIONS).is_file() or (root / REFVPS_FORMAT_FILE).is_file():
        return root
    return root / REFVPS_FOLDER


def check_ready(ws: Workspace, require_reviewed: bool = False) -> list[Problem]:
    """Everything that keeps the workspace from being exported (all at once)."""
    where = str(ws.root)
    meta = ws.meta
    problems = []
    texts = [" ".join(e.split()) for e in meta["expressions"]]
    for i, text in enumerate(texts):
        if not text:
            problems.append(Problem(where, f"expression {i + 1} (annotator {i // 2 + 1}) is empty"))
    filled = [t.lower() for t in texts if t]
    if len(set(filled)) != len(filled):
        problems.append(Problem(where, "two expressions are identical"))
    if not meta["concept"].strip():
        problems.append(Problem(where, "the concept is empty"))
    known = {g[0] for g in CONCEPT_GROUPS}
    if not meta["concept_groups"]:
        problems.append(Problem(where, "no concept group chosen"))
    for group in meta["concept_groups"]:
        if group not in known:
            problems.append(Problem(where, f"unknown concept group {group!r}"))
    if require_reviewed:
        pending = [f for f in ws.anno_frames if ws.status(f) != "reviewed"]
        if pending:
            problems.append(Problem(where, f"{len(pending)} annotation frame(s) not reviewed: "
                                           f"{', '.join(pending[:8])}"))
    return problems


def _concept_id(text: str) -> str:
    return "_".join(text.strip().lower().split())


def _read_json(path: Path, default: dict) -> dict:
    if not path.is_file():
        return default
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"dataset {path.parent}",
                              [Problem(str(path), f"malformed JSON ({exc})")]) from None
    if not isinstance(data, dict):
        raise ValidationError(f"dataset {path.parent}", [Problem(str(path), "not a JSON object")])
    return data


def _split_path(dataset: Path) -> Path:
    return dataset / SPLITS_DIR / f"{SPLIT}.txt"


def _read_split(dataset: Path) -> list[str]:
    """The split's entries as the loader reads them: one per line, stripped, blank lines
    skipped (an entry with a space inside stays one entry); without a split file, every clip
    of the metadata, which is what the loader then scores."""
    from refvps.loaders.refvps import RefVPS

    return RefVPS(dataset, SPLIT).clip_ids()


def _write_split(dataset: Path, clips: list[str]) -> None:
    atomic_write_bytes(_split_path(dataset), "".join(f"{c}\n" for c in clips).encode("utf-8"))


def _clip_paths(dataset: Path, clip: str) -> list[Path]:
    """Everything of one clip outside the shared JSON files: frames, annotations, provenance."""
    return [dataset / JPEG_DIR / clip, dataset / ANNOTATION_DIR / clip,
            dataset / PROVENANCE_DIR / f"{clip}.json"]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _journal(work: Path) -> Path:
    return work / "journal.json"


def recover_dataset(dataset: Path) -> str | None:
    """Finish an export that a crash interrupted (call with the export lock held).

    Returns what was done (for a message), or None when there was nothing to finish.
    """
    work = dataset / WORK_DIR
    journal = _journal(work)
    if not journal.is_file():
        for leftover in work.glob("*") if work.is_dir() else []:
            if leftover.name != "lock":
                _remove(leftover)
        return None
    entry = json.loads(journal.read_text(encoding="utf-8"))
    clip = entry["clip"]
    if clip_id_problem(clip):  # never act on a path from a tampered journal
        raise RefvpsError(f"{journal}: {clip_id_problem(clip)}")
    if entry.get("committed"):
        split = _read_split(dataset)
        if clip not in split:
            _write_split(dataset, split + [clip])
        done = f"finished the interrupted export of {clip}"
    else:
        for index, path in enumerate(_clip_paths(dataset, clip)):
            old = work / f"old-{index}"
            if old.exists() or old.is_symlink():
                _remove(path)
                old.rename(path)
            elif not entry["had"][index]:
                _remove(path)  # placed by the export (or never reached): there was none before
        meta_path = dataset / META_EXPRESSIONS
        meta_doc = _read_json(meta_path, {"format": REFVPS_FORMAT_ID, "videos": {}})
        videos = meta_doc.setdefault("videos", {})
        if videos.get(clip) != entry["old_record"]:
            if entry["old_record"] is None:
                videos.pop(clip, None)
            else:
                videos[clip] = entry["old_record"]
            atomic_write_json(meta_path, meta_doc)
        concepts_path = dataset / CONCEPTS_FILE
        if entry["old_concepts"] is None:
            concepts_path.unlink(missing_ok=True)
        elif _read_json(concepts_path, {}) != entry["old_concepts"]:
            atomic_write_json(concepts_path, entry["old_concepts"])
        split = _read_split(dataset)
        if entry.get("listed") and clip not in split:
            _write_split(dataset, split + [clip])
        done = f"rolled back the interrupted export of {clip}"
    journal.unlink()
    for leftover in work.glob("*"):
        if leftover.name != "lock":
            _remove(leftover)
    return done


def export_workspace(workspace: str | Path | Workspace, dataset_root: str | Path,
                     require_reviewed: bool = False, provenance: dict | None = None, *,
                     clip_id: str | None = None, replace: bool = False,
                     lock_wait: float = LOCK_WAIT_S) -> Path:
    """Write the workspace's clip into the dataset under ``dataset_root``; return that folder.

    ``clip_id`` overrides the workspace's id; an id already in the dataset is refused unless
    ``replace``. Waits up to ``lock_wait`` seconds for another export into the same dataset.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    clip = ws.clip_id if clip_id is None else clip_id
    problems = check_ready(ws, require_reviewed)
    if clip_id_problem(clip):
        problems.insert(0, Problem(str(ws.root), clip_id_problem(clip)))
    if problems:
        raise ValidationError(f"workspace {ws.root} is not ready to export", problems)
    dataset = dataset_folder(dataset_root)
    dataset.mkdir(parents=True, exist_ok=True)
    lock = ProcessLock(dataset / WORK_DIR / "lock", purpose=f"refvps annotate export of {clip}")
    with lock.acquire(wait=lock_wait, what=f"dataset {dataset}"):
        recover_dataset(dataset)
        _export_locked(ws, dataset, clip, replace, provenance)
    _validate(dataset, clip)
    return dataset


def _export_locked(ws: Workspace, dataset: Path, clip: str, replace: bool,
                   provenance: dict | None) -> None:
    work = dataset / WORK_DIR
    meta_path, concepts_path = dataset / META_EXPRESSIONS, dataset / CONCEPTS_FILE
    meta_doc = _read_json(meta_path, {"format": REFVPS_FORMAT_ID, "videos": {}})
    concepts_doc = _read_json(concepts_path, {"groups": [], "concepts": []})
    old_concepts = copy.deepcopy(concepts_doc) if concepts_path.is_file() else None
    split = _read_split(dataset)
    existed = clip in meta_doc.get("videos", {}) or clip in split
    if existed and not replace:
        raise ClipExistsError(f"dataset {dataset} already has a clip {clip!r}; export with "
                              "--replace to replace it, or choose another id with --clip-id")
    if not _split_path(dataset).is_file():  # make today's implicit split explicit first
        _write_split(dataset, split)
    if not (dataset / REFVPS_FORMAT_FILE).is_file():
        atomic_write_bytes(dataset / REFVPS_FORMAT_FILE, (REFVPS_FORMAT_TEXT + "\n").encode())

    staged = [work / "new-0", work / "new-1", work / "new-2.json"]
    jpeg_stage, anno_stage, provenance_stage = staged
    for stage in (jpeg_stage, anno_stage):
        stage.mkdir(parents=True)
    for frame in ws.frames:
        shutil.copyfile(ws.frame_path(frame), jpeg_stage / f"{frame}.jpg")
    statuses, edited = {}, 0
    for frame in ws.anno_frames:
        layers = ws.layers(frame)
        write_label_mask(anno_stage / f"{frame}.png", layers.labels())
        statuses[frame] = ws.status(frame)
        edited += layers.edited
    info = ws.info
    atomic_write_json(provenance_stage, {
        "clip_id": clip, "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": info["source"], "source_fps": info["source_fps"],
        "timestamps_from": info["timestamps_from"], "upsampled": info["upsampled"],
        "picks": info["picks"], "opencv": info["opencv"], "jpeg_quality": info["jpeg_quality"],
        "frame_status": statuses, "edited_frames": edited, "backend": provenance or {}})
    checkpoint("export.staged")

    listed = clip in split
    journal = {"clip": clip, "listed": listed, "committed": False,
               "had": [p.exists() or p.is_symlink() for p in _clip_paths(dataset, clip)],
               "old_record": meta_doc.get("videos", {}).get(clip),
               "old_concepts": old_concepts}
    atomic_write_json(_journal(work), journal)
    checkpoint("export.journal")
    if listed:
        split = [c for c in split if c != clip]
        _write_split(dataset, split)
        checkpoint("export.unlisted")
    for index, (path, stage) in enumerate(zip(_clip_paths(dataset, clip), staged)):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.rename(work / f"old-{index}")
            checkpoint(f"export.aside-{index}")
        stage.rename(path)
        checkpoint(f"export.placed-{index}")

    meta = ws.meta
    concept = _concept_id(meta["concept"])
    _merge_concepts(concepts_doc, concept, meta)
    atomic_write_json(concepts_path, concepts_doc)
    checkpoint("export.concepts")
    expressions = {str(i): {"exp": " ".join(text.split()), "obj_id": [1],
                            "annotator": i // 2, "exp_idx": i % 2}
                   for i, text in enumerate(meta["expressions"][:EXPRESSIONS_PER_CLIP])}
    meta_doc.setdefault("videos", {})[clip] = {
        "fps": info["fps"], "anno_fps": REFVPS_ANNO_FPS, "anno_stride": info["anno_stride"],
        "anno_offset": info["anno_offset"], "height": info["height"], "width": info["width"],
        "frames": ws.frames, "anno_frames": ws.anno_frames, "concept": concept,
        "concept_groups": list(meta["concept_groups"]), "expressions": expressions,
    }
    atomic_write_json(meta_path, meta_doc)
    checkpoint("export.meta")
    atomic_write_json(_journal(work), {**journal, "committed": True})
    checkpoint("export.committed")
    _write_split(dataset, split + [clip])
    checkpoint("export.listed")
    recover_dataset(dataset)  # drops the journal and the replaced files
    checkpoint("export.done")


def _merge_concepts(concepts_doc: dict, concept: str, meta: dict) -> None:
    """Add the five concept groups and the clip's concept (concepts.json only ever grows)."""
    groups = {g.get("id") for g in concepts_doc.setdefault("groups", []) if isinstance(g, dict)}
    for gid, name, definition in CONCEPT_GROUPS:
        if gid not in groups:
            concepts_doc["groups"].append({"id": gid, "name": name, "definition": definition})
    concepts = concepts_doc.setdefault("concepts", [])
    entry = next((c for c in concepts if isinstance(c, dict) and c.get("id") == concept), None)
    if entry is None:
        concepts.append({"id": concept, "name": meta["concept"].strip(),
                         "groups": list(meta["concept_groups"])})
    else:
        entry["groups"] = sorted(set(entry.get("groups", [])) | set(meta["concept_groups"]))


def _validate(dataset: Path, clip: str) -> None:
    from refvps.loaders.refvps import RefVPS

    problems = [p for p in RefVPS(dataset).validate() if clip in p.where or clip in p.what]
    if problems:
        raise ValidationError(f"exported clip {clip} in {dataset}", problems)
