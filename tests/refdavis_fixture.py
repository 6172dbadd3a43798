"""Ref-DAVIS17 fixtures in the official layouts (dataset-formats.md §9.3), built in code."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from refvps.masks import write_binary_mask, write_label_mask

FRAMES = ["00000", "00001", "00002", "00003"]
BLACKSWAN = (31, 45)   # H x W, landscape
DOGS = (29, 17)        # portrait
CAR = (30, 40)

TEXTS = {
    # file -> (encoding, lines); annot2 files carry the typo 'dog-scale', all carry 'clasic-car'
    "Davis17_annot1.txt": ("utf-8", [
        'blackswan 1 "a black swan"', 'dogs-scale 2 "the smaller dog"',
        'dogs-scale 1 "a big dog on the left"', 'clasic-car 1 "an old car"']),
    "Davis17_annot1_full_video.txt": ("utf-8", [
        'blackswan 1 "a black swan swimming"', 'dogs-scale 1 "a dog walking"',
        'dogs-scale 2 "a dog  sitting"', 'clasic-car 1 "an old car driving"']),
    "Davis17_annot2.txt": ("latin-1", [
        'blackswan 1 "swan"', 'dog-scale 1 "the dog near the café"',
        'dog-scale 2 "the other dog"', 'clasic-car 1 "car"']),
    "Davis17_annot2_full_video.txt": ("latin-1", [
        'blackswan 1 "the swan moving right"', 'dog-scale 1 "big dog"',
        'dog-scale 2 "small dog"', 'clasic-car 1 "vintage car"']),
}


def blackswan_labels(t: int) -> np.ndarray:
    """One object touching a 1-px void border on the right edge (column 44)."""
    labels = np.zeros(BLACKSWAN, np.uint8)
    labels[10:20, 30:44] = 1
    labels[:, 44] = 255
    return labels


def dogs_labels(t: int) -> np.ndarray:
    """Two objects; object 2 is absent in frame 00002."""
    labels = np.zeros(DOGS, np.uint8)
    labels[2:10, 2:8] = 1
    if t != 2:
        labels[15:25, 9:15] = 2
    return labels


def car_labels(t: int) -> np.ndarray:
    labels = np.zeros(CAR, np.uint8)
    labels[5:15, 5 + t:20 + t] = 1
    return labels


def late_labels(t: int) -> np.ndarray:
    """Empty first frame: the official rule gives this sequence no objects."""
    labels = np.zeros(DOGS, np.uint8)
    if t > 0:
        labels[3:9, 3:9] = 1
    return labels


GT = {"blackswan": blackswan_labels, "dogs-scale": dogs_labels, "classic-car": car_labels,
      "late-start": late_labels}


def _write_jpeg(path: Path, shape, t: int, video_idx: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((*shape, 3), np.uint8)
    image[...] = (20 * t, 7 * video_idx, 128)
    Image.fromarray(image).save(path, quality=95)


def make_raw(root: Path, val=("blackswan", "dogs-scale"), train=("classic-car",)) -> Path:
    """``root/ref-davis`` with ``DAVIS/`` and ``davis_text_annotations/``; returns that folder."""
    base = root / "ref-davis"
    davis = base / "DAVIS"
    for idx, seq in enumerate([*val, *train]):
        for t, frame in enumerate(FRAMES):
            labels = GT[seq](t)
            write_label_mask(davis / "Annotations_unsupervised/480p" / seq / f"{frame}.png", labels)
            _write_jpeg(davis / "JPEGImages/480p" / seq / f"{frame}.jpg", labels.shape, t, idx)
    sets = davis / "ImageSets/2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("\n".join(val))  # no trailing newline: loaders must strip
    (sets / "train.txt").write_text("\n".join(train) + "\n")
    semantics = {"blackswan": {"1": "swan"}, "dogs-scale": {"1": "dog", "2": "dog"},
                 "classic-car": {"1": "car"}, "late-start": {"1": "cat"}}
    (davis / "davis_semantics.json").write_text(json.dumps(semantics))
    texts = base / "davis_text_annotations"
    texts.mkdir()
    for name, (encoding, lines) in TEXTS.items():
        (texts / name).write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return base


def make_converted(root: Path, val=("blackswan", "dogs-scale")) -> Path:
    """The tree ReferFormer's converter leaves: valid/{JPEGImages,Annotations}, meta_expressions."""
    base = root / "ref-davis"
    for idx, seq in enumerate(val):
        for t, frame in enumerate(FRAMES):
            labels = GT[seq](t)
            write_label_mask(base / "valid/Annotations" / seq / f"{frame}.png", labels)
            _write_jpeg(base / "valid/JPEGImages" / seq / f"{frame}.jpg", labels.shape, t, idx)
    videos = {}
    for seq in val:
        n = {"blackswan": 1, "dogs-scale": 2}.get(seq, 1)
        expressions = {}
        for obj in range(1, n + 1):
            for run in range(4):
                expressions[str(len(expressions))] = {"exp": f"{seq} object {obj} run {run}",
                                                      "obj_id": str(obj)}
        videos[seq] = {"expressions": expressions, "frames": FRAMES}
    meta = base / "meta_expressions/valid"
    meta.mkdir(parents=True)
    (meta / "meta_expressions.json").write_text(json.dumps({"videos": videos}))
    return base


def gt_labels(seq: str) -> list[np.ndarray]:
    return [GT[seq](t) for t in range(len(FRAMES))]


def write_indexed(run_dir: Path, seq: str, labels: list[np.ndarray]) -> None:
    for frame, lab in zip(FRAMES, labels):
        write_label_mask(run_dir / seq / f"{frame}.png", lab)


def write_per_object(run_dir: Path, seq: str, masks: list[list[np.ndarray]]) -> None:
    """REM layout: ``masks[k-1][t]`` is proposal k on frame t, written as value k."""
    for k, frames in enumerate(masks, 1):
        for frame, mask in zip(FRAMES, frames):
            write_label_mask(run_dir / seq / str(k) / f"{frame}.png",
                             np.where(mask, k, 0).astype(np.uint8))


def perfect(seq: str) -> list[np.ndarray]:
    return [np.where(lab == 255, 0, lab).astype(np.uint8) for lab in gt_labels(seq)]


def make_hand_predictions(root: Path, val=("blackswan", "dogs-scale")) -> Path:
    """Four runs whose scores are computed by hand in the tests.

    anno_0: perfect, blackswan spilling onto the void column (still J = F = 1);
    anno_1: dogs-scale ids swapped 1 <-> 2 (the Hungarian matching undoes it);
    anno_2: REM per-object folders, blackswan shifted one column left (J = 13/15, F = 1),
            dogs-scale with two extra proposals (an empty folder and a far blob);
    anno_3: empty predictions (zero padding).
    """
    preds = root / "preds"
    for seq in val:
        labels = perfect(seq)
        run0 = [lab.copy() for lab in labels]
        if seq == "blackswan":
            for lab in run0:
                lab[10:20, 44] = 1
        write_indexed(preds / "anno_0", seq, run0)
        run1 = [np.select([lab == 1, lab == 2], [2, 1], 0).astype(np.uint8) for lab in labels]
        write_indexed(preds / "anno_1", seq, run1 if seq == "dogs-scale" else labels)
        if seq == "blackswan":
            shifted = [np.roll(lab == 1, -1, axis=1) for lab in labels]
            write_per_object(preds / "anno_2", seq, [shifted])
        elif seq == "dogs-scale":
            blob = np.zeros(DOGS, bool)
            blob[26:28, 0:2] = True
            write_per_object(preds / "anno_2", seq, [
                [lab == 1 for lab in labels], [lab == 2 for lab in labels],
                [np.zeros(DOGS, bool)] * len(FRAMES), [blob] * len(FRAMES)])
        else:
            write_per_object(preds / "anno_2", seq, [[lab == k for lab in labels]
                                                     for k in range(1, 2)])
        empty = [np.zeros_like(lab) for lab in labels]
        for index, (frame, mask) in enumerate(zip(FRAMES, empty)):
            path = preds / "anno_3" / seq / f"{frame}.png"
            if index == 0:
                write_binary_mask(path, mask)  # one 'L' file among palette files
            else:
                write_label_mask(path, mask)
    return preds


def random_dataset(root: Path, rng: np.random.Generator, n_seqs: int = 3) -> tuple[Path, list[str]]:
    """Random multi-object sequences with void, odd sizes and objects coming and going."""
    base = root / "ref-davis"
    davis = base / "DAVIS"
    names = [f"rand{i}" for i in range(n_seqs)]
    shapes = [(37, 53), (29, 61), (44, 39), (33, 47)]
    for i, seq in enumerate(names):
        shape = shapes[i % len(shapes)]
        n_obj = int(rng.integers(2, 5))
        n_frames = int(rng.integers(5, 9))
        for t in range(n_frames):
            labels = _random_labels(rng, shape, n_obj, t == 0)
            write_label_mask(davis / "Annotations_unsupervised/480p" / seq / f"{t:05d}.png", labels)
    sets = davis / "ImageSets/2017"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("\n".join(names) + "\n")
    return base, names


def _random_labels(rng, shape, n_obj, first: bool) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for k in range(1, n_obj + 1):
        if not first and rng.random() < 0.15:
            continue  # absent on this frame
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        ry, rx = rng.integers(2, shape[0] // 2), rng.integers(2, shape[1] // 2)
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        blob &= rng.random(shape) > 0.05  # holes
        labels[blob] = k
    if first:
        labels[0, 0] = n_obj  # the first frame defines n_obj objects
    void = rng.random(shape) < 0.03
    void[:, -2:] |= rng.random() < 0.5
    labels[void] = 255
    return labels


def random_predictions(root: Path, gt_root: Path, names: list[str], rng) -> Path:
    """Four runs: noisy indexed PNGs (ids permuted, some unused) and REM folders (overlapping)."""
    preds = root / "rand-preds"
    for seq in names:
        folder = gt_root / seq
        frames = sorted(p.stem for p in folder.glob("*.png"))
        gts = [np.array(Image.open(folder / f"{f}.png")) for f in frames]
        gts = [np.where(g == 255, 0, g) for g in gts]
        n_gt = int(max(g.max() for g in gts))
        for run in range(4):
            run_dir = preds / f"anno_{run}"
            n_prop = int(rng.integers(1, n_gt + 3))
            perm = rng.permutation(max(n_prop, n_gt)) + 1
            noisy = []
            for g in gts:
                out = np.zeros_like(g)
                for k in range(1, n_gt + 1):
                    mask = np.roll(g == k, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
                    mask &= rng.random(g.shape) > 0.1
                    if perm[k - 1] <= n_prop + 1:
                        out[mask] = perm[k - 1]
                noisy.append(out)
            if run % 2 == 0:
                write_indexed_frames(run_dir / seq, frames, noisy)
            else:
                ids = max(int(max(n.max() for n in noisy)), 1)
                for k in range(1, ids + 1):
                    for f, n in zip(frames, noisy):
                        mask = (n == k) | ((n == (k % ids) + 1) & (rng.random(n.shape) < 0.3))
                        write_label_mask(run_dir / seq / str(k) / f"{f}.png",
                                         np.where(mask, k, 0).astype(np.uint8))
    return preds


def write_indexed_frames(folder: Path, frames, labels) -> None:
    for f, lab in zip(frames, labels):
        write_label_mask(folder / f"{f}.png", lab.astype(np.uint8))
