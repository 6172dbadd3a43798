"""refvps submit: server zips for Ref-YouTube-VOS valid and MeViS valid, and every error path."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from _mevis_data import build_mevis
from _ytvos_data import build_ytvos
from problem_checks import assert_each_once
from refvps.cli import main
from refvps.errors import RefvpsError, ValidationError
from refvps.submit import make_submission

YT_VIDEO, YT_SIZE, YT_EXPS, YT_FRAMES = "f0e1d2c3b4", (29, 17), ("0", "2"), ("00000", "00005")
MV_VIDEO, MV_SIZE, MV_EXPS, MV_FRAMES = "abcdefabcdef", (31, 45), ("0", "1"), ("00000", "00001")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("submit")
    build_ytvos(base)
    build_mevis(base)
    return base


def box(size, shift: int) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[3:9 + shift, 2 + shift:10] = True
    return mask


def write(out, video, size, exps, frames, style="L255"):
    """Predictions ``out/<video>/<exp>/<frame>.png``; returns {relpath: mask}."""
    masks = {}
    for e_index, exp in enumerate(exps):
        for t, frame in enumerate(frames):
            rel = f"{video}/{exp}/{frame}.png"
            mask = masks[rel] = box(size, e_index + t)
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            if style == "P01" and t == 1:  # a palette 0/1 prediction is accepted too
                image = Image.fromarray(mask.astype(np.uint8), mode="L").convert("P")
                image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
            else:
                image = Image.fromarray(mask.astype(np.uint8) * 255)
            image.save(out / rel)
    return masks


def read_zip(path):
    with zipfile.ZipFile(path) as archive:
        images = {name: Image.open(io.BytesIO(archive.read(name))) for name in archive.namelist()}
    return {name: (image.mode, np.array(image)) for name, image in images.items()}


def test_ytvos_zip_has_annotations_at_its_root(root, tmp_path):
    masks = write(tmp_path / "preds", YT_VIDEO, YT_SIZE, YT_EXPS, YT_FRAMES, style="P01")
    result = make_submission(tmp_path / "preds", "ref-ytvos", root, out=tmp_path / "sub.zip",
                             workers=1, progress=False)
    assert (result.videos, result.expressions, result.frames) == (1, 2, 4)
    content = read_zip(tmp_path / "sub.zip")
    assert sorted(content) == sorted(f"Annotations/{rel}" for rel in masks)
    for rel, mask in masks.items():
        mode, values = content[f"Annotations/{rel}"]
        assert mode == "L"
        np.testing.assert_array_equal(values, mask.astype(np.uint8) * 255)


def test_wrapped_and_zipped_inputs_give_the_same_bytes(root, tmp_path):
    write(tmp_path / "plain", YT_VIDEO, YT_SIZE, YT_EXPS, YT_FRAMES)
    write(tmp_path / "wrapped" / "Annotations", YT_VIDEO, YT_SIZE, YT_EXPS, YT_FRAMES)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as archive:
        for path in sorted((tmp_path / "wrapped").rglob("*.png")):
            archive.write(path, path.relative_to(tmp_path / "wrapped").as_posix())
    outputs = []
    for source in ("plain", "wrapped", "in.zip"):
        out = tmp_path / f"{source}.out.zip"
        make_submission(tmp_path / source, "ref-ytvos", root, out=out, workers=1, progress=False)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_mevis_zip_has_video_folders_at_its_root(root, tmp_path):
    masks = write(tmp_path / "preds", MV_VIDEO, MV_SIZE, MV_EXPS, MV_FRAMES)
    make_submission(tmp_path / "preds", "mevis", root, out=tmp_path / "sub.zip", workers=2,
                    progress=False)
    content = read_zip(tmp_path / "sub.zip")
    assert sorted(content) == sorted(masks)
    assert {name.split("/")[0] for name in content} == {MV_VIDEO}


def test_every_problem_is_reported_and_nothing_written(root, tmp_path):
    preds = tmp_path / "preds"
    write(preds, YT_VIDEO, YT_SIZE, YT_EXPS, YT_FRAMES)
    exp0, exp2 = preds / YT_VIDEO / "0", preds / YT_VIDEO / "2"
    (exp0 / "00005.png").unlink()                                          # missing frame
    Image.fromarray(np.zeros((17, 29), np.uint8)).save(exp0 / "00000.png")  # H / W swapped
    soft = np.zeros(YT_SIZE, np.uint8)
    soft[0, 0], soft[1, 1] = 128, 255
    Image.fromarray(soft).save(exp2 / "00000.png")                         # three values
    Image.new("RGB", (17, 29)).save(exp2 / "00005.png")                    # RGB
    (preds / "0000000000" / "0").mkdir(parents=True)                       # unknown video
    (preds / "0000000000" / "0" / "00000.png").write_bytes(b"junk")
    out = tmp_path / "sub.zip"
    out.write_bytes(b"previous")
    with pytest.raises(ValidationError) as info:
        make_submission(preds, "ref-ytvos", root, out=out, workers=1, progress=False)
    problems = [str(p) for p in info.value.problems]
    expected = ["0: missing 1 required frame(s): 00005",
                "0000000000: unknown folder",
                "0/00000.png: size 29x17 (WxH), the input frame is 17x29",
                "2/00000.png: not a binary mask: 3 distinct values (0, 128, 255)",
                "2/00005.png"]
    assert_each_once(problems, expected)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds", "sub.zip"]  # no temp file


def test_missing_input_frames_and_missing_folders(root, tmp_path):
    preds = tmp_path / "preds"
    write(preds, YT_VIDEO, YT_SIZE, ("0",), YT_FRAMES)
    jpeg = root / "ref-youtube-vos" / "valid" / "JPEGImages" / YT_VIDEO / "00005.jpg"
    saved = jpeg.read_bytes()
    jpeg.unlink()
    try:
        with pytest.raises(ValidationError) as info:
            make_submission(preds, "ref-ytvos", root, out=tmp_path / "s.zip", workers=1,
                            progress=False)
    finally:
        jpeg.write_bytes(saved)
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 2
    assert any(p.endswith(f"{YT_VIDEO}/2: folder missing (2 required frame(s))") for p in problems)
    assert any("00005.jpg: input frame missing" in p for p in problems)


def test_mevis_rejects_a_palette_the_official_reader_sees_as_empty(root, tmp_path):
    preds = tmp_path / "preds"
    masks = write(preds, MV_VIDEO, MV_SIZE, MV_EXPS, MV_FRAMES)
    rel = f"{MV_VIDEO}/1/00001.png"
    image = Image.fromarray(masks[rel].astype(np.uint8), mode="L").convert("P")
    image.putpalette([0, 0, 0] * 256)
    image.save(preds / rel)
    with pytest.raises(ValidationError, match="official reader \\(cv2-gray\\) sees different"):
        make_submission(preds, "mevis", root, out=tmp_path / "s.zip", workers=1, progress=False)
    assert not (tmp_path / "s.zip").exists()


def test_splits_and_benchmarks_without_a_server(root, tmp_path):
    with pytest.raises(RefvpsError, match="public ground truth; score it locally"):
        make_submission(tmp_path, "mevis", root, split="valid_u", out=tmp_path / "s.zip")
    with pytest.raises(RefvpsError, match="has no evaluation server"):
        make_submission(tmp_path, "ref-vps", tmp_path, out=tmp_path / "s.zip")


def test_cli_submit(root, tmp_path):
    write(tmp_path / "preds", MV_VIDEO, MV_SIZE, MV_EXPS, MV_FRAMES)
    runner = CliRunner()
    args = ["submit", "-b", "mevis", "--data", str(root), "--preds", str(tmp_path / "preds"),
            "--no-progress", "-j", "1", "--out"]
    ok = runner.invoke(main, args + [str(tmp_path / "s.zip")])
    assert ok.exit_code == 0, ok.output
    assert "mevis valid, 1 videos, 2 expressions, 4 frames" in ok.output
    (tmp_path / "preds" / MV_VIDEO / "1" / "00000.png").unlink()
    bad = runner.invoke(main, args + [str(tmp_path / "t.zip")])
    assert bad.exit_code == 2 and "missing 1 required frame(s): 00000" in bad.output
    assert not (tmp_path / "t.zip").exists()
