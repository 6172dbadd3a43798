"""A literal transcription of VSPW-dataset/VSPW_code's measures, run on a GT folder converted with
the dataset README's mapping (what those scripts expect in ``DIR/data/<video>/mask``).

``miou`` transcribes ``evaluator_test.py`` with ``utils.Evaluator(124)``; ``vc`` transcribes
``VC_perclip.py`` (``get_common``, ``clip_num``). Shares no code with refvps.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image


class Evaluator:
    def __init__(self, num_class):
        self.num_class = num_class
        self.confusion_matrix = np.zeros((self.num_class,) * 2)

    def Pixel_Accuracy(self):  # noqa: N802 (the original's names)
        return np.diag(self.confusion_matrix).sum() / self.confusion_matrix.sum()

    def Pixel_Accuracy_Class(self):  # noqa: N802
        acc = np.diag(self.confusion_matrix) / self.confusion_matrix.sum(axis=1)
        return np.nanmean(acc)

    def Mean_Intersection_over_Union(self):  # noqa: N802
        miou = np.diag(self.confusion_matrix) / (
            np.sum(self.confusion_matrix, axis=1) + np.sum(self.confusion_matrix, axis=0)
            - np.diag(self.confusion_matrix))
        isval = np.sum(self.confusion_matrix, axis=1) > 0
        return np.nansum(miou * isval) / isval.sum()

    def Frequency_Weighted_Intersection_over_Union(self):  # noqa: N802
        freq = np.sum(self.confusion_matrix, axis=1) / np.sum(self.confusion_matrix)
        iu = np.diag(self.confusion_matrix) / (
            np.sum(self.confusion_matrix, axis=1) + np.sum(self.confusion_matrix, axis=0)
            - np.diag(self.confusion_matrix))
        return (freq[freq > 0] * iu[freq > 0]).sum()

    def _generate_matrix(self, gt_image, pre_image):
        mask = (gt_image >= 0) & (gt_image < self.num_class)
        label = self.num_class * gt_image[mask].astype('int') + pre_image[mask]
        count = np.bincount(label, minlength=self.num_class ** 2)
        return count.reshape(self.num_class, self.num_class)

    def add_batch(self, gt_image, pre_image):
        assert gt_image.shape == pre_image.shape
        self.confusion_matrix += self._generate_matrix(gt_image, pre_image)


def _videos(DIR):  # noqa: N803
    with open(os.path.join(DIR, 'val.txt'), 'r') as f:
        lines = f.readlines()
    return [line[:-1] for line in lines]


def miou(DIR, PRED):  # noqa: N803
    eval_ = Evaluator(124)
    for video in _videos(DIR):
        for tar in os.listdir(os.path.join(DIR, 'data', video, 'mask')):
            pred = os.path.join(PRED, video, tar)
            tar_ = np.array(Image.open(os.path.join(DIR, 'data', video, 'mask', tar)))[np.newaxis, :]
            pred_ = np.array(Image.open(pred))[np.newaxis, :]
            eval_.add_batch(tar_, pred_)
    return (eval_.Pixel_Accuracy(), eval_.Pixel_Accuracy_Class(),
            eval_.Mean_Intersection_over_Union(),
            eval_.Frequency_Weighted_Intersection_over_Union())


def get_common(list_, predlist, clip_num, h, w):
    accs = []
    for i in range(len(list_) - clip_num):
        global_common = np.ones((h, w))
        predglobal_common = np.ones((h, w))
        for j in range(1, clip_num):
            common = (list_[i] == list_[i + j])
            global_common = np.logical_and(global_common, common)
            pred_common = (predlist[i] == predlist[i + j])
            predglobal_common = np.logical_and(predglobal_common, pred_common)
        pred = (predglobal_common * global_common)
        acc = pred.sum() / global_common.sum()
        accs.append(acc)
    return accs


def vc(DIR, Pred, clip_num):  # noqa: N803
    total_acc = []
    for video in _videos(DIR):
        imglist, predlist = [], []
        images = sorted(os.listdir(os.path.join(DIR, 'data', video, 'mask')))
        if len(images) <= clip_num:
            continue
        for imgname in images:
            img = Image.open(os.path.join(DIR, 'data', video, 'mask', imgname))
            w, h = img.size
            imglist.append(np.array(img))
            predlist.append(np.array(Image.open(os.path.join(Pred, video, imgname))))
        total_acc.extend(get_common(imglist, predlist, clip_num, h, w))
    return np.nanmean(np.array(total_acc))
