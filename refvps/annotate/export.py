"""Export a workspace as one clip of a refvps-format 0.1 dataset, merged atomically.

The clip's folders are written under temporary names and renamed into place; the merged
``meta_expressions.json``, ``concepts.json`` and split list are each replaced atomically, last,
so the dataset never lists a clip whose files are not complete. Other clips are not touched.
The result is checked with the Ref-VPS loader's validation.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from refvps.annotate.storage import atomic_write_bytes, atomic_write_json
from refvps.annotate.workspace import Workspace
from refvps.errors import Problem, ValidationError
from refvps.formats import (ANNOTATION_DIR, CONCEPT_GROUPS, CONCEPTS_FILE, EXPRESSIONS_PER_CLIP,
                            JPEG_DIR, META_EXPRESSIONS, PROVENANCE_DIR, REFVPS_ANNO_FPS,
                            REFVPS_FOLDER, REFVPS_FORMAT_FILE, REFVPS_FORMAT_ID,
                            REFVPS_FORMAT_TEXT, SPLITS_DIR)
from refvps.masks import write_label_mask

SPLIT = "test"


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


def _replace_dir(staging: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _read_json(path: Path, default: dict) -> dict:
    if not path.is_file():
        return default
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"dataset {path.parent}", [Problem(str(path), f"malformed JSON ({exc})")])
    if not isinstance(data, dict):
        raise ValidationError(f"dataset {path.parent}", [Problem(str(path), "not a JSON object")])
    return data


def export_workspace(workspace: str | Path | Workspace, dataset_root: str | Path,
                     require_reviewed: bool = False, provenance: dict | None = None) -> Path:
    """Write the workspace's clip into the dataset under ``dataset_root``; return that folder."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    problems = check_ready(ws, require_reviewed)
    if problems:
        raise ValidationError(f"workspace {ws.root} is not ready to export", problems)
    dataset = dataset_folder(dataset_root)
    dataset.mkdir(parents=True, exist_ok=True)
    clip = ws.clip_id
    meta_path, concepts_path = dataset / META_EXPRESSIONS, dataset / CONCEPTS_FILE
    meta_doc = _read_json(meta_path, {"format": REFVPS_FORMAT_ID, "videos": {}})
    concepts_doc = _read_json(concepts_path, {"groups": [], "concepts": []})

    jpeg_stage = dataset / JPEG_DIR / f".{clip}.tmp"
    anno_stage = dataset / ANNOTATION_DIR / f".{clip}.tmp"
    for stage in (jpeg_stage, anno_stage):
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
    for frame in ws.frames:
        shutil.copyfile(ws.frame_path(frame), jpeg_stage / f"{frame}.jpg")
    statuses, edited = {}, 0
    for frame in ws.anno_frames:
        layers = ws.layers(frame)
        write_label_mask(anno_stage / f"{frame}.png", layers.labels())
        statuses[frame] = ws.status(frame)
        edited += layers.edited
    _replace_dir(jpeg_stage, dataset / JPEG_DIR / clip)
    _replace_dir(anno_stage, dataset / ANNOTATION_DIR / clip)

    meta = ws.meta
    concept = _concept_id(meta["concept"])
    info = ws.info
    expressions = {str(i): {"exp": " ".join(text.split()), "obj_id": [1],
                            "annotator": i // 2, "exp_idx": i % 2}
                   for i, text in enumerate(meta["expressions"][:EXPRESSIONS_PER_CLIP])}
    meta_doc.setdefault("videos", {})[clip] = {
        "fps": info["fps"], "anno_fps": REFVPS_ANNO_FPS, "anno_stride": info["anno_stride"],
        "anno_offset": info["anno_offset"], "height": info["height"], "width": info["width"],
        "frames": ws.frames, "anno_frames": ws.anno_frames, "concept": concept,
        "concept_groups": list(meta["concept_groups"]), "expressions": expressions,
    }
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

    split_path = dataset / SPLITS_DIR / f"{SPLIT}.txt"
    split = split_path.read_text(encoding="utf-8").split() if split_path.is_file() else []
    if clip not in split:
        split.append(clip)
    record = {"clip_id": clip, "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "source": info["source"], "source_fps": info["source_fps"],
              "timestamps_from": info["timestamps_from"], "upsampled": info["upsampled"],
              "picks": info["picks"], "opencv": info["opencv"], "jpeg_quality": info["jpeg_quality"],
              "frame_status": statuses,
              "edited_frames": edited,
              "backend": provenance or {}}
    atomic_write_json(dataset / PROVENANCE_DIR / f"{clip}.json", record)
    if not (dataset / REFVPS_FORMAT_FILE).is_file():
        atomic_write_bytes(dataset / REFVPS_FORMAT_FILE, (REFVPS_FORMAT_TEXT + "\n").encode())
    atomic_write_json(concepts_path, concepts_doc)
    atomic_write_bytes(split_path, "".join(f"{c}\n" for c in split).encode())
    atomic_write_json(meta_path, meta_doc)
    _validate(dataset, clip)
    return dataset


def _validate(dataset: Path, clip: str) -> None:
    from refvps.loaders.refvps import RefVPS

    problems = [p for p in RefVPS(dataset).validate() if clip in p.where or clip in p.what]
    if problems:
        raise ValidationError(f"exported clip {clip} in {dataset}", problems)
