"""Model wrappers against stand-in upstream code (real import names and call signatures).

The stand-ins are written into temporary "repositories"; they record what the wrapper passes in
and answer with outputs whose correct post-processing is known by hand.
"""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from refvps.baselines import create
from refvps.baselines.protocol import ModelLoadError
from refvps.baselines.clips import fit_clip_len, plan_fixed, plan_tail, shorter_clip_len, stitch
from refvps.baselines.models.common import short_side_size, shortest_edge_size
from refvps.baselines.models.sola import drop_part_masks, keyframes, sola_union
from refvps.baselines.models.uniref import clean_string


def _write(root, files: dict):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def fresh_modules(monkeypatch):
    """Forget stand-in upstream modules after each test (names clash across repos)."""
    before = set(sys.modules)
    cwd = __import__("os").getcwd()
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in {"models", "opts", "detectron2", "module"}:
            del sys.modules[name]
    monkeypatch.chdir(cwd)


def _frames(pattern, height=30, width=40):
    """White frames for 1, black for 0."""
    return [np.full((height, width, 3), 255 * v, np.uint8) for v in pattern]


# --- pure glue ------------------------------------------------------------------------------
def test_clip_plans_by_hand():
    assert plan_fixed(10, 4) == [(0, 4, 0), (4, 8, 4), (8, 10, 8)]
    assert plan_fixed(3, None) == [(0, 3, 0)] and plan_fixed(3, 0) == [(0, 3, 0)]
    assert plan_tail(20, 9) == [(0, 9, 0), (9, 18, 9), (11, 20, 18)]
    assert plan_tail(9, 9) == [(0, 9, 0)]
    assert fit_clip_len(73, 40, (73, 61, 49, 37, 25)) == 37
    assert fit_clip_len(73, 3, (73, 5)) is None
    assert shorter_clip_len(73, 100, (73, 61, 49)) == 61
    assert shorter_clip_len(None, 37, ()) == 18 and shorter_clip_len(1, 5, ()) is None
    pieces = [((0, 9, 0), list(range(0, 9))), ((9, 18, 9), list(range(9, 18))),
              ((11, 20, 18), list(range(11, 20)))]
    assert stitch(pieces, 20) == list(range(20))


def test_resize_rules_by_hand():
    assert short_side_size(720, 1280, 360) == (360, 640)
    assert short_side_size(1000, 600, 360) == (600, 360)
    assert short_side_size(481, 641, 360) == (360, 479)  # int(360 * 641 / 481) = 479 (truncated)
    assert shortest_edge_size(720, 1280, 480, 1333) == (480, 853)  # 853.33 -> 853
    assert shortest_edge_size(100, 1000, 480, 1333) == (133, 1333)  # long side capped
    assert clean_string("The man's red-hat / (left)!") == "the mans red hat   left"


def test_sola_selection_by_hand():
    big = np.zeros((4, 4), bool)
    big[:, :3] = True
    part = np.zeros((4, 4), bool)
    part[:2, :2] = True
    other = np.zeros((4, 4), bool)
    other[:, 3] = True
    assert drop_part_masks([part, big, other]) == [1, 2]
    masklets = np.stack([np.stack([big, big]), np.stack([other, other])])
    assert np.array_equal(sola_union(masklets, np.array([0.9, 0.7]), 0.5)[0], big | other)
    assert not sola_union(masklets, np.array([0.1, 0.5]), 0.5).any()  # 0.5 is not > 0.5
    assert not sola_union(np.zeros((0, 2, 4, 4), bool), np.zeros(0), 0.5).any()
    assert keyframes(9, "first-middle") == [0, 4] and keyframes(9, "every:4") == [0, 4, 8]


# --- REM --------------------------------------------------------------------------------------
REM_MS = {
    "models/__init__.py": "",
    "models/mst2v_wrapper.py": '''
        import json, os
        import torch
        LOG = os.environ["STANDIN_LOG"]
        def log(*record):
            with open(LOG, "a") as f:
                f.write(json.dumps(record) + "\\n")
        class Tokenizer:
            model_max_length = 77
            def __call__(self, text, padding, max_length, truncation, return_tensors):
                log("tokenizer", text, padding, max_length, truncation)
                return type("T", (), {"input_ids": torch.zeros(1, max_length, dtype=torch.long)})()
        class TextEncoder:
            def __call__(self, ids):
                log("text_encoder", list(ids.shape))
                return (torch.ones(1, 77, 8),)
        class VAE:
            config = type("C", (), {"scaling_factor": 0.25})()
            def decode(self, latents):
                log("decode", latents.shape[0])
                out = torch.zeros(latents.shape[0], 3, 512, 512)
                out[:, :, :, :256] = latents[:, :1, :1, :1]  # left half = frame brightness
                return type("D", (), {"sample": out})()
        class UNet(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.zeros(1))
        class Backbone:
            def __init__(self, sd_id):
                self.sd_id, self.tokenizer, self.text_encoder = sd_id, Tokenizer(), TextEncoder()
                self.vae, self.unet = VAE(), UNet()
        def build_vdiff_lean_updown(sd_id="ali-vilab/text-to-video-ms-1.7b"):
            log("build", sd_id)
            return Backbone(sd_id)
        class Vdiff_updown:
            def __init__(self, backbone):
                self.backbone = backbone
            def to(self, device):
                log("to", device)
                return self
            def eval(self):
                return self
            def __call__(self, imgs, text):
                log("model", list(imgs.shape), float(imgs.min()), float(imgs.max()), list(text.shape))
                bright = (imgs[0].mean(dim=(1, 2, 3)) + 1) / 2  # 1 for white, 0 for black
                return bright[:, None, None, None].expand(-1, 4, 64, 64) * 0.25
    ''',
}


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rem_ms_glue(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch (pip install torch)")
    repo = _write(tmp_path / "rem", REM_MS)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    torch.save({"unet": {"w": torch.ones(1)}, "epoch": 3}, tmp_path / "ckpt.pth")
    model = create("rem-ms", repo=str(repo), checkpoint=str(tmp_path / "ckpt.pth"),
                   base_model="/local/ms", device="cpu", clip_len="4")
    pattern = [1, 0, 1, 1, 0, 0, 1]
    masks = model.predict(_frames(pattern), "the candle")
    assert masks.shape == (7, 30, 40)
    left = np.zeros((30, 40), bool)
    left[:, :20] = True  # 256 of 512 columns -> 20 of 40
    for t, v in enumerate(pattern):
        assert np.array_equal(masks[t], left if v else np.zeros_like(left))
    assert float(model.model.backbone.unet.w.detach()) == 1.0  # checkpoint['unet'] loaded
    calls = _log(log)
    assert calls[0] == ["build", "/local/ms"] and ["to", "cpu"] in calls
    assert ["tokenizer", "the candle", "max_length", 77, True] in calls
    model_calls = [c for c in calls if c[0] == "model"]
    assert [c[1] for c in model_calls] == [[1, 4, 3, 512, 512], [1, 3, 3, 512, 512]]
    assert model_calls[0][2:4] == [-1.0, 1.0]  # Normalize(0.5, 0.5) of black and white
    assert [c[1] for c in calls if c[0] == "decode"] == [4, 3]


def test_rem_ms_checkpoint_without_unet_is_refused(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch")
    repo = _write(tmp_path / "rem", REM_MS)
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    torch.save({"model_state": {}}, tmp_path / "wan.pth")
    model = create("rem-ms", repo=str(repo), checkpoint=str(tmp_path / "wan.pth"), device="cpu")
    with pytest.raises(ModelLoadError, match="no 'unet' entry"):
        model.predict(_frames([1]), "x")


REM_WAN = {
    "models/__init__.py": "",
    "models/want2v_wrapper.py": '''
        import json, os
        import torch
        LOG = os.environ["STANDIN_LOG"]
        def log(*record):
            with open(LOG, "a") as f:
                f.write(json.dumps(record) + "\\n")
        class Tokenizer:
            def __call__(self, text, padding, max_length, truncation, add_special_tokens,
                         return_attention_mask, return_tensors):
                log("tokenizer", text, max_length)
                mask = torch.zeros(1, max_length, dtype=torch.long)
                mask[0, :100] = 1  # a 100-token prompt: longer than token_length
                return type("T", (), {"input_ids": torch.zeros(1, max_length, dtype=torch.long),
                                      "attention_mask": mask})()
        class TextEncoder:
            def __call__(self, ids, mask):
                return type("O", (), {"last_hidden_state": torch.ones(1, ids.shape[1], 6)})()
        class Dist:
            def __init__(self, z):
                self.z = z
            def mode(self):
                return self.z
        class VAE:
            dtype = torch.float32
            config = type("C", (), {"z_dim": 4, "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4})()
            def encode(self, x):  # 1 x 3 x n x h x w
                bright = (x[0].mean(dim=(0, 2, 3)) + 1) / 2
                return type("E", (), {"latent_dist": Dist(bright[None, None, :, None, None].expand(1, 4, -1, 8, 8))})()
            def decode(self, z, return_dict=True):
                out = torch.zeros(1, 3, z.shape[2], 512, 512)
                out[:, :, :, :, :256] = z[:, :1, :, :1, :1]
                return (out,)
        class Backbone:
            def __init__(self):
                self.tokenizer, self.text_encoder, self.vae = Tokenizer(), TextEncoder(), VAE()
                self.dit = type("D", (), {"dtype": torch.float32})()
        def build_want2vlarge_txt_model(base_dir):
            log("build", base_dir)
            return Backbone()
        class WanVdiff_wrapper(torch.nn.Module):
            def __init__(self, backbone):
                super().__init__()
                self.backbone = backbone
                self.head = torch.nn.Linear(1, 1)
            def forward(self, z, timesteps, prompt_embeds):
                log("model", z.shape[2], timesteps, list(prompt_embeds.shape))
                return z
    ''',
}


def test_rem_wan_glue(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch")
    repo = _write(tmp_path / "rem", REM_WAN)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    state = {"head.weight": torch.ones(1, 1), "head.bias": torch.zeros(1), "extra": torch.ones(1)}
    torch.save({"model_state": state, "epoch": 1}, tmp_path / "ckpt.pth")
    model = create("rem-wan", repo=str(repo), checkpoint=str(tmp_path / "ckpt.pth"),
                   base_dir="/wan-diffusers", device="cpu", clip_len="9")
    pattern = [i % 3 == 0 for i in range(20)]
    with pytest.warns(UserWarning, match="1 unexpected keys"):
        masks = model.predict(_frames(pattern), "smoke")
    assert model.unexpected_keys == ["extra"]
    assert [bool(m.any()) for m in masks] == pattern  # tail clip stitched in the right place
    assert masks[0, :, :20].all() and not masks[0, :, 20:].any()
    calls = _log(log)
    assert calls[0] == ["build", "/wan-diffusers"] and ["tokenizer", "smoke", 512] in calls
    # by hand: clips 0-9, 9-18, then the last 9 frames (11-20) keeping 18-20; text cut to 77
    assert [c[1:] for c in calls if c[0] == "model"] == [[9, 0, [1, 77, 6]]] * 3
    short = model.predict(_frames([1, 0, 1]), "x")  # shorter than 5: padded, then cropped
    assert short.shape == (3, 30, 40) and [bool(m.any()) for m in short] == [True, False, True]
    assert model.shorter_clip_len(40) == 5 and model.clip_len == 5


# --- VD-IT --------------------------------------------------------------------------------------
VDIT = {
    "opts.py": '''
        import argparse
        def get_args_parser():
            p = argparse.ArgumentParser("stand-in", add_help=False)
            for flag in ("--with_box_refine", "--binary", "--freeze_text_encoder", "--eval", "--amp"):
                p.add_argument(flag, action="store_true")
            p.add_argument("--backbone", default="resnet50")
            p.add_argument("--dataset_file", default="ytvos")
            return p
    ''',
    "models/__init__.py": '''
        import json, os
        import torch
        def log(*record):
            with open(os.environ["STANDIN_LOG"], "a") as f:
                f.write(json.dumps(record) + "\\n")
        class VDIT(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.zeros(1))
            def forward(self, samples, captions, targets):
                imgs = samples[0]
                t, _, h, w = imgs.shape
                log("forward", list(imgs.shape), captions, targets[0]["size"].tolist(),
                    [round(float(v), 4) for v in imgs[0, :, 0, 0]])
                hp, wp = -(-h // 32) * 32, -(-w // 32) * 32
                logits = torch.full((1, t, 1, hp, wp), 5.0)  # padding says "object"
                logits[0, :, 0, :h, :w] = -5.0
                logits[0, :, 0, :h // 2, :w] = 5.0  # top half of the real image
                return {"pred_masks": logits}
        def build_model_diff_cross(args):
            log("args", args.backbone, args.dataset_file, args.binary, args.masks, os.getcwd())
            return VDIT(), None, None
    ''',
}


def test_vdit_glue(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch")
    repo = _write(tmp_path / "vdit", VDIT)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    torch.save({"model": {"w": torch.ones(1)}}, tmp_path / "ckpt.pth")
    model = create("vd-it", repo=str(repo), checkpoint=str(tmp_path / "ckpt.pth"), device="cpu",
                   clip_len="3", amp="false")
    masks = model.predict(_frames([1] * 5, height=90, width=120), "a bird")
    calls = _log(log)
    assert calls[0] == ["args", "itcross_video_swin", "davis", True, True, str(repo)]
    forwards = [c for c in calls if c[0] == "forward"]
    # by hand: Resize(360) of 90 x 120 -> 360 x 480; ImageNet-normalised white pixel
    assert [f[1] for f in forwards] == [[3, 3, 360, 480], [2, 3, 360, 480]]
    assert forwards[0][2] == ["a bird"] and forwards[0][3] == [360, 480]
    assert forwards[0][4] == [round((1 - m) / s, 4) for m, s in
                              ((0.485, 0.229), (0.456, 0.224), (0.406, 0.225))]
    assert float(model.model.w.detach()) == 1.0
    expected = np.zeros((90, 120), bool)
    expected[:45] = True  # the padding (all "object") was cropped before resizing
    assert all(np.array_equal(m, expected) for m in masks)


# --- UniRef++ -----------------------------------------------------------------------------------
UNIREF = {
    "detectron2/__init__.py": "",
    "detectron2/config.py": '''
        class Node(dict):
            def __getattr__(self, key):
                return self.setdefault(key, Node())
            def __setattr__(self, key, value):
                self[key] = value
            def merge_from_file(self, path):
                self["merged"] = path
            def freeze(self):
                self["frozen"] = True
        def get_cfg():
            return Node()
    ''',
    "detectron2/projects/__init__.py": "",
    "detectron2/projects/uniref.py": '''
        def add_uniref_config(cfg):
            cfg["uniref"] = True
    ''',
    "detectron2/checkpoint.py": '''
        class DetectionCheckpointer:
            def __init__(self, model):
                self.model = model
            def load(self, path):
                self.model.loaded = path
    ''',
    "detectron2/modeling.py": '''
        import json, os
        import numpy as np
        from PIL import Image
        class Model:
            def __init__(self, cfg):
                self.cfg, self.save_path_prefix = cfg, None
            def eval(self):
                return self
            def __call__(self, batches):
                b = batches[0]
                with open(os.environ["STANDIN_LOG"], "a") as f:
                    f.write(json.dumps({k: v for k, v in b.items() if k != "image"}) + "\\n")
                    f.write(json.dumps([list(i.shape) + [str(i.dtype)] for i in b["image"]][:1]) + "\\n")
                for name in b["file_names"]:
                    stem = os.path.splitext(os.path.basename(name))[0]
                    mask = np.zeros((b["height"], b["width"]), np.uint8)
                    mask[: b["height"] // 2] = 255
                    path = os.path.join(self.save_path_prefix, b["video"], b["exp_id"], stem + ".png")
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    Image.fromarray(mask).save(path)
        def build_model(cfg):
            return Model(cfg)
    ''',
}


def test_uniref_glue(tmp_path, monkeypatch, fresh_modules):
    pytest.importorskip("torch", reason="the wrapper glue needs torch")
    repo = _write(tmp_path / "uniref", UNIREF)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    model = create("uniref-swinl", repo=str(repo), checkpoint="/ckpt/swinl.pth", device="cpu")
    masks = model.predict(_frames([1, 1, 0], height=90, width=160), "The dog's tail-end!")
    batch, shapes = _log(log)
    assert batch["task"] == "rvos" and batch["dataset_name"] == "refytvos"
    assert batch["expressions"] == ["the dogs tail end"]
    assert (batch["height"], batch["width"]) == (90, 160) and len(batch["file_names"]) == 3
    assert shapes == [[3, 480, 853, "torch.uint8"]]  # ResizeShortestEdge(480, 1333), CHW uint8
    assert model.model.loaded == "/ckpt/swinl.pth"
    assert model.model.cfg["merged"].endswith("configs/eval/swin-l/eval_rvos_swin-l.yaml")
    assert model.model.cfg["MODEL"]["WEIGHTS"] == "/ckpt/swinl.pth"
    assert masks.shape == (3, 90, 160) and masks[:, :45].all() and not masks[:, 45:].any()
