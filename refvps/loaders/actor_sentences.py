"""A2D-Sentences and JHMDB-Sentences with the evaluation MTTR introduced (ReferFormer, VD-IT).

Data: the COCO-format ground truth MTTR's ``create_gt_in_coco_format.py`` writes (one image per
annotated sample, ``v_<video>_f_<frame>_i_<instance>`` for A2D, ``v_<video>_f_<frame>`` for
JHMDB, exactly one instance each), optionally the sample list with the sentences.

Predictions: a COCO results JSON (a list of ``{image_id, category_id, segmentation (RLE),
score}``, what ``evaluate_a2d`` hands to ``COCO.loadRes``) as the only ``.json`` at the top of
the predictions folder or zip, or binary PNGs ``<video>/<query_id>/<frame>.png`` (score 1).

Protocol (MTTR ``metrics.py`` = ReferFormer / VD-IT ``datasets/a2d_eval.py`` + ``engine.py``):
per sample the highest-scoring prediction (the last of equal scores) gives
IoU = (I + 1e-6) / (U + 1e-6) in float32; Precision@K counts IoU > K; Overall IoU =
sum I / sum U; Mean IoU = mean IoU over samples; mAP@0.5:0.95 and AP50 / AP75 / AP S/M/L by
pycocotools ``COCOeval(iouType="segm")`` with ``useCats = 0`` over every prediction.
"""
from __future__ import annotations

import contextlib
from abc import abstractmethod
import io
import json
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from refvps.errors import MaskError, Problem, ValidationError
from refvps.formats import (A2D_FOLDER, A2D_GT_FILE, A2D_SAMPLES_FILE, JHMDB_FOLDER, JHMDB_GT_FILE,
                            JHMDB_SAMPLES_FILE)
from refvps.inputs import MAX_RESULTS_BYTES
from refvps.loaders.base import Benchmark, GroundTruth, Query, TaskResult, VideoTask
from refvps.loaders.jsonfiles import read_json
from refvps.masks import rle_decode

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
EPS = np.float32(1e-6)
AP_NAMES = ("mAP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")  # COCOeval.stats[:6]


def mttr_iou(inter: int, union: int) -> float:
    """MTTR's ``compute_iou`` on one mask pair: float32 sums, ``(I + eps) / (U + eps)``."""
    return float((np.float32(inter) + EPS) / (np.float32(union) + EPS))


def coco_iou(inter: int, union: int) -> float:
    """``pycocotools.mask.iou`` of two same-size masks (0 when they do not overlap)."""
    return inter / union if inter else 0.0


class _Samples(GroundTruth):
    """The ground-truth masks of one video's samples, decoded on demand."""

    def __init__(self, samples: dict[str, dict]):
        self.samples = samples  # "<query_id>/<frame>" -> {"rle", "image_id", ...}
        self.digests: dict[str, str] = {}

    def target(self, query: Query, frame: str) -> tuple[np.ndarray, None]:
        return rle_decode(self.samples[f"{query.query_id}/{frame}"]["rle"]), None


class ActorSentences(Benchmark):
    """What A2D-Sentences and JHMDB-Sentences share: data format, prediction forms, protocol."""

    gt_file: ClassVar[str]
    samples_file: ClassVar[str]
    image_id_pattern: ClassVar[re.Pattern]
    headline = ("mAP", "oIoU", "mIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9")
    compute_f = False
    unit_name = "query"
    protocol = ("per sample the top-scoring prediction: IoU = (I + 1e-6) / (U + 1e-6) in float32, "
                "Precision@0.5:0.9 (IoU > K), Overall IoU = sum I / sum U, Mean IoU over samples; "
                "mAP@0.5:0.95 by pycocotools COCOeval (segm, useCats = 0) over every prediction")
    reference = ("mttr2021/MTTR metrics.py and datasets/*/create_gt_in_coco_format.py, as used by "
                 "wjn922/ReferFormer and buxiangzhiren/VD-IT (datasets/a2d_eval.py, engine.py)")

    def __init__(self, root: str | Path, split: str | None = None, decay_mode: str = "davis2017"):
        super().__init__(root, split, decay_mode)
        self._gt: dict | None = None
        self._problems: list[Problem] = []
        self.results: dict[str, list[dict]] | None = None  # COCO results JSON, by image id

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_gt"] = state["results"] = None  # tasks carry what workers need
        return state

    @classmethod
    def looks_like(cls, path: Path) -> bool:
        return (path / cls.gt_file).is_file()

    # --- data --------------------------------------------------------------------------------
    def metadata_files(self) -> list[Path]:
        return [self.root / self.gt_file]

    def samples(self) -> dict[str, dict]:
        """GT samples by image id, in the GT file's image order (the order of the means)."""
        if self._gt is None:
            self._gt, self._problems = self._read_gt()
        return self._gt

    def _read_gt(self) -> tuple[dict[str, dict], list[Problem]]:
        path = self.root / self.gt_file
        read_problems: list[Problem] = []
        data = read_json(path, read_problems)
        if read_problems:
            if read_problems[0].what == "file not found":
                return {}, [Problem(str(path), "file not found (the COCO-format ground truth "
                                               "that MTTR's create_gt_in_coco_format.py writes)")]
            return {}, read_problems
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                                 for k in ("images", "annotations")):
            return {}, [Problem(str(path), "expected a COCO object with 'images' and "
                                           "'annotations' lists")]
        problems: list[Problem] = []
        texts = self._texts()
        samples: dict[str, dict] = {}
        for image in data["images"]:
            image_id = image.get("id") if isinstance(image, dict) else None
            match = self.image_id_pattern.fullmatch(image_id) if isinstance(image_id, str) else None
            if match is None:
                problems.append(Problem(str(path), f"image id {image_id!r} is not of the form "
                                                   f"{self.image_id_pattern.pattern}"))
                continue
            video, frame = match.group("video"), int(match.group("frame"))
            instance = match.groupdict().get("instance") or "0"
            samples.setdefault(image_id, {"image_id": image_id, "video": video,
                                          "query_id": instance, "frame": f"{frame:05d}",
                                          "height": image.get("height"),
                                          "width": image.get("width"), "annotations": [],
                                          "categories": [],
                                          "text": texts.get((video, frame, instance), "")})
        categories = sorted(c["id"] for c in data.get("categories", [])
                            if isinstance(c, dict) and isinstance(c.get("id"), int))
        for ann in data["annotations"]:
            sample = samples.get(ann.get("image_id")) if isinstance(ann, dict) else None
            if sample is not None:
                sample["annotations"].append(ann)
        for image_id, sample in samples.items():
            anns = sample.pop("annotations")
            where = f"{path} [{image_id}]"
            if len(anns) != 1:
                problems.append(Problem(where, f"{len(anns)} annotations; the MTTR conversion "
                                               "writes exactly one instance per image"))
                continue
            ann = anns[0]
            rle = ann.get("segmentation")
            if not (isinstance(rle, dict) and isinstance(rle.get("counts"), str)
                    and rle.get("size") == [sample["height"], sample["width"]]):
                problems.append(Problem(where, "segmentation must be a compressed RLE of the "
                                               "image's height x width"))
            elif ann.get("iscrowd") or ann.get("category_id") not in categories:
                problems.append(Problem(where, "annotation must have iscrowd 0 and a listed "
                                               "category_id"))
            else:
                sample.update(rle=rle, area=float(ann.get("area", 0.0)), categories=categories)
        ids = [i.get("id") for i in data["images"] if isinstance(i, dict)]
        if len(set(map(str, ids))) != len(ids):
            problems.append(Problem(str(path), "an image id is listed twice"))
        return {k: v for k, v in samples.items() if "rle" in v}, problems

    def _texts(self) -> dict[tuple[str, int, str], str]:
        """(video, frame, instance) -> sentence, from the sample list when it is present."""
        rows = read_json(self.root / self.samples_file, [], required=False)
        texts = {}
        for row in rows if isinstance(rows, list) else []:
            try:
                key, text = self.text_entry(row)
            except (TypeError, ValueError):  # texts only label the rows; a bad row is skipped
                continue
            texts[key] = text
        return texts

    @staticmethod
    @abstractmethod
    def text_entry(row: list) -> tuple[tuple[str, int, str], str]:
        """((video, frame, query id), sentence) of one row of the sample list."""

    # --- validation and tasks ----------------------------------------------------------------
    def validate(self) -> list[Problem]:
        samples = self.samples()
        if not samples and not self._problems:
            return [Problem(str(self.root / self.gt_file), "no image to score")]
        return list(self._problems)

    def tasks(self) -> list[VideoTask]:
        by_video: dict[str, dict[str, dict]] = {}
        for sample in self.samples().values():
            by_video.setdefault(sample["video"], {})[
                f"{sample['query_id']}/{sample['frame']}"] = sample
        order = {image_id: i for i, image_id in enumerate(self.samples())}
        tasks = []
        for video in sorted(by_video):
            samples = by_video[video]
            queries: dict[str, list[str]] = {}
            for key in sorted(samples):
                query_id, frame = key.split("/")
                queries.setdefault(query_id, []).append(frame)
            gt = {key: {**s, "sample": order[s["image_id"]],
                        "detections": None if self.results is None
                        else self.results.get(s["image_id"], [])} for key, s in samples.items()}
            tasks.append(VideoTask(video, [
                Query(video, query_id, samples[f"{query_id}/{frames[0]}"]["text"], tuple(frames))
                for query_id, frames in sorted(queries.items(), key=lambda kv: _natural(kv[0]))],
                gt=gt))
        return tasks

    def load_gt(self, task: VideoTask) -> _Samples:
        return _Samples(task.gt)

    # --- predictions -------------------------------------------------------------------------
    def bind_predictions(self, store) -> None:
        """A COCO results JSON at the top of the store, or else the PNG layout."""
        tops = sorted(f for f in store.raw_files() if "/" not in f and f.endswith(".json"))
        if not tops:
            self.results = None
            return
        if len(tops) > 1:
            raise ValidationError(f"predictions {store.path}", [Problem(
                store.describe(name), "one COCO results .json expected at the top, found "
                                      f"{len(tops)}") for name in tops])
        self.results = self._read_results(store, tops[0])

    def _read_results(self, store, name: str) -> dict[str, list[dict]]:
        where = store.describe(name)
        try:
            entries = json.loads(store.read_bytes(name, limit=MAX_RESULTS_BYTES))
        except MaskError as exc:
            raise ValidationError(f"predictions {store.path}",
                                  [Problem(exc.path, exc.what)]) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"predictions {store.path}",
                                  [Problem(where, f"malformed JSON ({exc})")]) from None
        if not isinstance(entries, list):
            raise ValidationError(f"predictions {store.path}", [Problem(
                where, "expected a list of {image_id, category_id, segmentation, score}")])
        samples = self.samples()
        results: dict[str, list[dict]] = {}
        problems: list[Problem] = []
        for index, det in enumerate(entries):
            what = _result_problem(det, samples)
            if what:
                problems.append(Problem(f"{where} [entry {index}]", what))
            else:
                results.setdefault(det["image_id"], []).append(det)
        problems += [Problem(where, f"no prediction for image {image_id} (the official "
                                    "evaluation crashes)") for image_id in samples
                     if image_id not in results]
        if problems:
            raise ValidationError(f"predictions {store.path}", problems)
        return results

    def required_predictions(self, store, tasks: list[VideoTask]) -> list[str]:
        if self.results is not None:
            return []
        return super().required_predictions(store, tasks)

    # --- scoring (runs in workers) -----------------------------------------------------------
    def score_task(self, task: VideoTask, reader, allow_missing: bool = False) -> TaskResult:
        rows, problems, missing = [], [], 0
        for query in task.queries:
            for t, frame in enumerate(query.frames):
                sample = task.gt[f"{query.query_id}/{frame}"]
                gt = rle_decode(sample["rle"])
                if sample["detections"] is not None:
                    dets = [(float(d["score"]), rle_decode(d["segmentation"]),
                             d["category_id"] in sample["categories"])
                            for d in sample["detections"]]
                else:
                    relpath = self.prediction_relpath(query, frame)
                    try:
                        pred = reader.read_binary(relpath)
                    except MaskError as exc:
                        problems.append(Problem(exc.path, exc.what))
                        continue
                    if pred is None:
                        missing += 1
                        if not allow_missing:
                            continue  # reported by the presence check
                    dets = [] if pred is None else [(1.0, pred, True)]
                    if pred is not None and pred.shape != gt.shape:
                        problems.append(Problem(reader.describe(relpath),
                                                f"size {pred.shape[1]}x{pred.shape[0]} (WxH), "
                                                f"expected {gt.shape[1]}x{gt.shape[0]}"))
                        continue
                rows.append(_sample_row(query, t, frame, sample, gt, dets))
        return TaskResult(rows, problems, missing)

    # --- protocol ----------------------------------------------------------------------------
    def aggregate(self, frames: pd.DataFrame, units: pd.DataFrame) -> tuple[dict, dict]:
        rows = frames.sort_values("sample", kind="stable")
        ious = rows["J"].to_numpy(np.float64)
        metrics: dict = {f"P@{k}": float(np.count_nonzero(ious > k) / len(ious))
                         for k in THRESHOLDS}
        metrics["oIoU"] = float(sum(rows["inter"].astype(float)) / sum(rows["union"].astype(float)))
        metrics["mIoU"] = float(np.mean(ious))
        metrics.update(zip(AP_NAMES, coco_ap(rows)))
        metrics["n_samples"] = int(len(rows))
        metrics["prediction_form"] = "coco-json" if self.results is not None else "png"
        return metrics, self.breakdowns(units)

    def notes(self) -> list[str]:
        return ["Precision@K counts IoU > K (strictly); IoU is MTTR's float32 (I + 1e-6) / "
                "(U + 1e-6), so an empty prediction on an empty GT scores 1",
                "mAP: COCOeval segm, useCats = 0, at most 100 predictions per sample; a "
                "prediction whose category_id is not one of the GT's categories counts for Precision / IoU "
                "only"]


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _result_problem(det: object, samples: dict) -> str:
    if not isinstance(det, dict):
        return "not an object"
    if det.get("image_id") not in samples:
        return f"image_id {det.get('image_id')!r} is not in the ground truth"
    score = det.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
        return "score must be a number"
    if "category_id" not in det:
        return "category_id missing (COCO.loadRes needs it)"
    rle = det.get("segmentation")
    sample = samples[det["image_id"]]
    if not (isinstance(rle, dict) and isinstance(rle.get("counts"), str)
            and rle.get("size") == [sample["height"], sample["width"]]):
        return (f"segmentation must be a compressed RLE of size [{sample['height']}, "
                f"{sample['width']}]")
    try:
        rle_decode(rle)
    except (ValueError, TypeError) as exc:
        return f"malformed RLE ({exc})"
    return ""


def _sample_row(query: Query, t: int, frame: str, sample: dict, gt: np.ndarray,
                dets: list[tuple[float, np.ndarray, bool]]) -> dict:
    """One sample: MTTR's IoU of the top prediction and (score, COCO IoU, area, counted) of all."""
    scored = []
    for score, mask, counted in dets:
        inter = int(np.count_nonzero(mask & gt))
        union = int(np.count_nonzero(mask | gt))
        scored.append((score, inter, union, int(np.count_nonzero(mask)), counted))
    top = max(range(len(scored)), key=lambda i: (scored[i][0], i)) if scored else None
    inter, union, area = (scored[top][1], scored[top][2], scored[top][3]) if scored \
        else (0, int(np.count_nonzero(gt)), 0)
    return {"unit": query.unit, "video": query.video, "query_id": query.query_id, "frame": frame,
            "t": t, "image_id": sample["image_id"], "sample": sample["sample"],
            "J": mttr_iou(inter, union), "inter": inter, "union": union,
            "gt_area": int(np.count_nonzero(gt)), "coco_gt_area": sample["area"],
            "height": sample["height"], "width": sample["width"],
            "pred_area": area, "void_area": 0, "pred_missing": not dets,
            "detections": json.dumps([[s, coco_iou(i, u), a, int(c)]
                                      for s, i, u, a, c in scored])}


class _StoredIoUEval(COCOeval):
    """COCOeval whose IoUs come from the per-sample rows (one GT instance per image)."""

    def __init__(self, gt: COCO, dt: COCO):
        super().__init__(gt, dt, iouType="bbox")  # the same Params as segm; IoUs are stored
        self.params.useCats = 0

    def computeIoU(self, imgId, catId):  # noqa: N802,N803 (COCOeval's names)
        """The stored IoUs, predictions in the order and number COCOeval's own would use."""
        p = self.params
        gt = [g for c in p.catIds for g in self._gts[imgId, c]]
        dt = [d for c in p.catIds for d in self._dts[imgId, c]]
        if not gt and not dt:
            return []
        order = np.argsort([-d["score"] for d in dt], kind="mergesort")
        dt = [dt[i] for i in order][:p.maxDets[-1]]
        return np.array([[d["iou"]] * len(gt) for d in dt], np.float64).reshape(len(dt), len(gt))


def coco_ap(rows: pd.DataFrame) -> list[float]:
    """COCOeval (segm, useCats = 0) ``stats[:6]`` from the per-sample rows.

    With exactly one GT instance per image, COCOeval needs of a prediction only its score, its
    area and its IoU with that instance; the rows hold those (``detections``), and the rest of
    COCOeval (matching, area ranges, accumulation, interpolation) runs unchanged.
    """
    images = [{"id": i, "height": int(h), "width": int(w)}
              for i, h, w in zip(rows["image_id"], rows["height"], rows["width"])]
    gt_anns = [{"id": n + 1, "image_id": i, "category_id": 1, "area": a, "iscrowd": 0}
               for n, (i, a) in enumerate(zip(rows["image_id"], rows["coco_gt_area"]))]
    dt_anns = []
    for image_id, detections in zip(rows["image_id"], rows["detections"]):
        for score, iou, area, counted in json.loads(detections):
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": image_id, "score": score,
                            "category_id": 1 if counted else 0, "area": area, "iscrowd": 0,
                            "iou": iou})
    cocos = []
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        for anns in (gt_anns, dt_anns):
            coco = COCO()
            coco.dataset = {"images": images, "annotations": anns,
                            "categories": [{"id": 1, "name": "dummy_class"}]}
            coco.createIndex()
            cocos.append(coco)
        evaluator = _StoredIoUEval(*cocos)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(v) for v in evaluator.stats[:6]]


class A2DSentences(ActorSentences):
    name = "a2d-sentences"
    folder = A2D_FOLDER
    title = "A2D-Sentences (referring actor segmentation, MTTR evaluation)"
    splits = ("test",)
    default_split = "test"
    gt_file = A2D_GT_FILE
    samples_file = A2D_SAMPLES_FILE
    image_id_pattern = re.compile(r"v_(?P<video>.+)_f_(?P<frame>\d+)_i_(?P<instance>\d+)")

    @staticmethod
    def text_entry(row: list) -> tuple[tuple[str, int, str], str]:
        """``[sentence, video, frame, instance]`` (a2d_sentences_single_frame_test_annotations)."""
        text, video, frame, instance = row
        return (str(video), int(frame), str(instance)), str(text)


class JHMDBSentences(ActorSentences):
    name = "jhmdb-sentences"
    folder = JHMDB_FOLDER
    title = "JHMDB-Sentences (referring actor segmentation, MTTR evaluation)"
    splits = ("all",)
    default_split = "all"
    gt_file = JHMDB_GT_FILE
    samples_file = JHMDB_SAMPLES_FILE
    image_id_pattern = re.compile(r"v_(?P<video>.+)_f_(?P<frame>\d+)")

    @staticmethod
    def text_entry(row: list) -> tuple[tuple[str, int, str], str]:
        """``[video, chosen frame path, masks path, _, sentence]`` (samples metadata)."""
        video, frame_path, _masks, _other, text = row
        frame = int(str(frame_path).rsplit("/", 1)[-1].split(".")[0])
        return (str(video), frame, "0"), str(text)
