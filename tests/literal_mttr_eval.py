"""A literal transcription of the A2D / JHMDB-Sentences evaluation MTTR introduced.

``precision_iou`` transcribes ``calculate_precision_at_k_and_iou_metrics`` and ``compute_iou``
(mttr2021/MTTR metrics.py, copied as datasets/a2d_eval.py by ReferFormer and VD-IT) with torch;
``coco_map`` is the COCOeval block of ReferFormer / VD-IT ``engine.evaluate_a2d``. Shares no code
with refvps.
"""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from pycocotools.mask import decode


def compute_iou(outputs, labels, EPS=1e-6):  # noqa: N803 (the original's name)
    outputs = outputs.int()
    intersection = (outputs & labels).float().sum((1, 2))
    union = (outputs | labels).float().sum((1, 2))
    iou = (intersection + EPS) / (union + EPS)
    return iou, intersection, union


def precision_iou(coco_gt, coco_pred):
    counters_by_iou = {iou: 0 for iou in [0.5, 0.6, 0.7, 0.8, 0.9]}
    total_intersection_area = 0
    total_union_area = 0
    ious_list = []
    for instance in coco_gt.imgs.keys():
        gt_annot = coco_gt.imgToAnns[instance][0]
        gt_mask = decode(gt_annot['segmentation'])
        pred_annots = coco_pred.imgToAnns[instance]
        pred_annot = sorted(pred_annots, key=lambda a: a['score'])[-1]
        pred_mask = decode(pred_annot['segmentation'])
        iou, intersection, union = compute_iou(torch.tensor(pred_mask).unsqueeze(0),
                                               torch.tensor(gt_mask).unsqueeze(0))
        iou, intersection, union = iou.item(), intersection.item(), union.item()
        for iou_threshold in counters_by_iou.keys():
            if iou > iou_threshold:
                counters_by_iou[iou_threshold] += 1
        total_intersection_area += intersection
        total_union_area += union
        ious_list.append(iou)
    num_samples = len(ious_list)
    precision_at_k = np.array(list(counters_by_iou.values())) / num_samples
    overall_iou = total_intersection_area / total_union_area
    mean_iou = np.mean(ious_list)
    return precision_at_k, overall_iou, mean_iou


def evaluate_a2d(gt_json_path, predictions):
    """The metrics dict ``engine.evaluate_a2d`` builds from a GT file and a predictions list."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_json_path))
        coco_pred = coco_gt.loadRes(copy.deepcopy(predictions))
        coco_eval = COCOeval(coco_gt, coco_pred, iouType='segm')
        coco_eval.params.useCats = 0
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    ap_labels = ['mAP 0.5:0.95', 'AP 0.5', 'AP 0.75', 'AP 0.5:0.95 S', 'AP 0.5:0.95 M',
                 'AP 0.5:0.95 L']
    eval_metrics = {label: m for label, m in zip(ap_labels, coco_eval.stats[:6])}
    precision_at_k, overall_iou, mean_iou = precision_iou(coco_gt, coco_pred)
    eval_metrics.update({f'P@{k}': m for k, m in zip([0.5, 0.6, 0.7, 0.8, 0.9], precision_at_k)})
    eval_metrics.update({'overall_iou': overall_iou, 'mean_iou': mean_iou})
    return eval_metrics
