"""Model wrappers against stand-in upstream code (real import names and call signatures).

The stand-ins are written into temporary "repositories"; they record what the wrapper passes in
and answer with outputs whose correct post-processing is known by hand.
"""
from __future__ import annotations

import hashlib
import json
import sys
import textwrap

import numpy as np
import pytest

from refvps.baselines import create
from refvps.baselines.protocol import ModelLoadError
from refvps.baselines.clips import fit_clip_len, plan_fixed, plan_tail, shorter_clip_len, stitch
from refvps.baselines.models.common import short_side_size, shortest_edge_size
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


# --- REM --------------------------------------------------------------------------------------
# The stand-ins mirror ReferEverything @ 6dcc5a9 as the contract run (scripts/upstream-check)
# exercised it: the same import names, call signatures, tensor shapes and dtypes; only the
# numbers are made up so that the correct post-processing is known by hand.
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
            """transformers CLIPTokenizer (the pipeline's `tokenizer`): model_max_length 77."""
            model_max_length = 77
            def __call__(self, text, padding, max_length, truncation, return_tensors):
                log("tokenizer", text, padding, max_length, truncation, return_tensors)
                return Encoding(input_ids=torch.zeros(1, max_length, dtype=torch.long),
                                attention_mask=torch.ones(1, max_length, dtype=torch.long))
        class Encoding(dict):
            """transformers BatchEncoding: a dict whose keys are also attributes."""
            __getattr__ = dict.__getitem__
        class TextEncoder:
            """transformers CLIPTextModel: (last_hidden_state 1 x 77 x 1024, pooled 1 x 1024)."""
            def __call__(self, input_ids):
                log("text_encoder", list(input_ids.shape))
                return (torch.ones(1, input_ids.shape[1], 1024), torch.ones(1, 1024))
        class VAE:
            """diffusers AutoencoderKL of text-to-video-ms-1.7b: decode(n x 4 x h x w latents)
            .sample is n x 3 x 8h x 8w; config.scaling_factor 0.18215."""
            config = type("C", (), {"scaling_factor": 0.18215})()
            def decode(self, latents):
                log("decode", list(latents.shape))
                n, _, h, w = latents.shape
                out = torch.zeros(n, 3, 8 * h, 8 * w)
                out[:, :, :, :4 * w] = latents[:, :1, :1, :1]  # left half = frame brightness
                return type("DecoderOutput", (), {"sample": out})()
        class VDiffFeatExtractor_lean_updown(torch.nn.Module):
            """models/mst2v_wrapper.py: holds unet, vae, tokenizer, text_encoder, scheduler."""
            def __init__(self, sd_id):
                super().__init__()
                self.unet = torch.nn.Linear(1, 1)
                self.vae, self.tokenizer, self.text_encoder = VAE(), Tokenizer(), TextEncoder()
        def build_vdiff_lean_updown(sd_id="ali-vilab/text-to-video-ms-1.7b"):
            """models/mst2v_wrapper.py build_vdiff_lean_updown(sd_id)."""
            log("build", sd_id)
            return VDiffFeatExtractor_lean_updown(sd_id)
        class Vdiff_updown(torch.nn.Module):
            """models/mst2v_wrapper.py Vdiff_updown: forward(frames 1 x n x 3 x S x S in
            [-1, 1], prompt_embeds 1 x 77 x 1024) -> the UNet's conv_out, n x 4 x S/8 x S/8
            (frames folded into the batch), still multiplied by the VAE scaling factor."""
            def __init__(self, vdiff):
                super().__init__()
                self.backbone = vdiff
            def forward(self, frames, prompt_embeds):
                log("model", list(frames.shape), float(frames.min()), float(frames.max()),
                    list(prompt_embeds.shape))
                size = frames.shape[-1]
                bright = (frames[0].mean(dim=(1, 2, 3)) + 1) / 2  # 1 for white, 0 for black
                scale = self.backbone.vae.config.scaling_factor
                return bright[:, None, None, None].expand(-1, 4, size // 8, size // 8) * scale
    ''',
}


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _ms_checkpoint(torch, path, unet):
    """Upstream's format (train_REM_MS_vid.py): unet weights, optimizer state, epoch, args."""
    import argparse

    torch.save({"unet": unet, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3,
                "args": argparse.Namespace(num_frames=72)}, path)


def test_rem_ms_glue(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch (pip install torch)")
    repo = _write(tmp_path / "rem", REM_MS)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    _ms_checkpoint(torch, tmp_path / "ckpt.pth", {"weight": torch.full((1, 1), 2.0),
                                                   "bias": torch.zeros(1)})
    model = create("rem-ms", repo=str(repo), checkpoint=str(tmp_path / "ckpt.pth"),
                   base_model="/local/ms", device="cpu", clip_len="4", vae_chunk="3")
    pattern = [1, 0, 1, 1, 0, 0, 1]
    masks = model.predict(_frames(pattern), "the candle")
    assert masks.shape == (7, 30, 40)
    left = np.zeros((30, 40), bool)
    left[:, :20] = True  # 256 of 512 columns -> 20 of 40
    for t, v in enumerate(pattern):
        assert np.array_equal(masks[t], left if v else np.zeros_like(left))
    assert float(model.model.backbone.unet.weight.detach()) == 2.0  # checkpoint['unet'] loaded
    calls = _log(log)
    assert calls[0] == ["build", "/local/ms"]
    assert ["tokenizer", "the candle", "max_length", 77, True, "pt"] in calls
    model_calls = [c for c in calls if c[0] == "model"]
    assert [c[1] for c in model_calls] == [[1, 4, 3, 512, 512], [1, 3, 3, 512, 512]]
    assert model_calls[0][2:] == [-1.0, 1.0, [1, 77, 1024]]  # Normalize(0.5, 0.5) of black, white
    # clips of 4 and 3 frames, each decoded vae_chunk=3 frames at a time
    assert [c[1] for c in calls if c[0] == "decode"] == [[3, 4, 64, 64], [1, 4, 64, 64],
                                                         [3, 4, 64, 64]]
    info = model.info()
    digest = hashlib.sha256((tmp_path / "ckpt.pth").read_bytes()).hexdigest()
    assert info.checkpoint_sha256 == digest
    assert info.upstream_commit == ""  # not a git checkout


def test_rem_ms_checkpoint_without_unet_is_refused_once(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch")
    repo = _write(tmp_path / "rem", REM_MS)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    torch.save({"model_state": {}}, tmp_path / "wan.pth")
    model = create("rem-ms", repo=str(repo), checkpoint=str(tmp_path / "wan.pth"), device="cpu")
    with pytest.raises(ModelLoadError, match="no 'unet' entry"):
        model.predict(_frames([1]), "x")
    with pytest.raises(ModelLoadError, match="no 'unet' entry"):  # not loaded again
        model.predict(_frames([1]), "x")
    assert [c[0] for c in _log(log)].count("build") == 1


def test_rem_checkpoint_loads_only_weights_and_namespace(tmp_path):
    torch = pytest.importorskip("torch", reason="needs torch")
    from refvps.baselines.models.rem import load_rem_checkpoint

    _ms_checkpoint(torch, tmp_path / "ok.pth", {"w": torch.ones(2)})
    loaded = load_rem_checkpoint(str(tmp_path / "ok.pth"))
    assert loaded["args"].num_frames == 72 and torch.equal(loaded["unet"]["w"], torch.ones(2))
    torch.save({"unet": {}, "hook": _frames}, tmp_path / "code.pth")  # a pickled function
    with pytest.raises(Exception, match="(?i)weights.only|unsupported global"):
        load_rem_checkpoint(str(tmp_path / "code.pth"))


REM_WAN = {
    "models/__init__.py": "",
    "models/want2v_wrapper.py": '''
        import json, os
        import torch
        LOG = os.environ["STANDIN_LOG"]
        def log(*record):
            with open(LOG, "a") as f:
                f.write(json.dumps(record) + "\\n")
        class Encoding(dict):
            """transformers BatchEncoding: a dict whose keys are also attributes."""
            __getattr__ = dict.__getitem__
        class Tokenizer:
            """transformers T5TokenizerFast of Wan2.1-T2V-14B-Diffusers."""
            def __call__(self, text, padding, max_length, truncation, add_special_tokens,
                         return_attention_mask, return_tensors):
                log("tokenizer", text, padding, max_length, truncation, add_special_tokens)
                mask = torch.zeros(1, max_length, dtype=torch.long)
                mask[0, :100] = 1  # a 100-token prompt: longer than token_length
                return Encoding(input_ids=torch.zeros(1, max_length, dtype=torch.long),
                                attention_mask=mask)
        class TextEncoder:
            """transformers UMT5EncoderModel (loaded in bf16): forward(input_ids,
            attention_mask).last_hidden_state, 1 x 512 x 4096."""
            def __call__(self, input_ids, attention_mask):
                hidden = torch.ones(1, input_ids.shape[1], 4096, dtype=torch.bfloat16)
                return type("BaseModelOutput", (), {"last_hidden_state": hidden})()
        class LatentDist:
            def __init__(self, z):
                self.z = z
            def mode(self):
                return self.z
        class VAE:
            """diffusers AutoencoderKLWan in bf16: z_dim 16, 8x spatial and 4x temporal
            compression (1 + 4k frames <-> 1 + k latent frames). Here latent frame t keeps the
            brightness of its frames in channels 0-3, so decode gives every frame back."""
            dtype = torch.bfloat16
            config = type("C", (), {"z_dim": 16, "latents_mean": [0.5] * 16,
                                    "latents_std": [2.0] * 16})()
            def encode(self, x):  # 1 x 3 x n x S x S, n = 1 + 4k
                assert x.dtype == torch.bfloat16 and (x.shape[2] - 1) % 4 == 0
                n, size = x.shape[2], x.shape[3]
                bright = (x[0].float().mean(dim=(0, 2, 3)) + 1) / 2
                z = torch.zeros(1, 16, 1 + (n - 1) // 4, size // 8, size // 8)
                z[0, 0, 0] = bright[0]
                for i in range(1, n):
                    z[0, (i - 1) % 4, 1 + (i - 1) // 4] = bright[i]
                return type("EncoderOutput", (), {"latent_dist": LatentDist(z.to(self.dtype))})()
            def decode(self, z, return_dict=True):
                k, h = z.shape[2], z.shape[3]
                frames = [z[0, 0, 0, 0, 0]] + [z[0, (i - 1) % 4, 1 + (i - 1) // 4, 0, 0]
                                               for i in range(1, 1 + 4 * (k - 1))]
                out = torch.zeros(1, 3, len(frames), 8 * h, 8 * h, dtype=self.dtype)
                for i, v in enumerate(frames):
                    out[0, :, i, :, :4 * h] = v
                return (out,)
        class DiT(torch.nn.Linear):
            """diffusers WanTransformer3DModel: a ModelMixin, whose dtype is its weights'."""
            dtype = property(lambda self: self.weight.dtype)
        class WanVdifflarge_txt(torch.nn.Module):
            """models/want2v_wrapper.py: holds dit, vae, scheduler, text_encoder, tokenizer
            (build_want2vlarge_txt_model loads them in bf16)."""
            def __init__(self):
                super().__init__()
                self.dit = DiT(1, 1).to(torch.bfloat16)
                self.vae, self.tokenizer, self.text_encoder = VAE(), Tokenizer(), TextEncoder()
        def build_want2vlarge_txt_model(sd_id=""):
            """models/want2v_wrapper.py build_want2vlarge_txt_model(sd_id)."""
            log("build", sd_id)
            return WanVdifflarge_txt()
        class WanVdiff_wrapper(torch.nn.Module):
            """models/want2v_wrapper.py WanVdiff_wrapper: forward(latents, prompt_embeds,
            timesteps) -> the DiT's prediction, same shape as the latents. Like upstream's
            fp32 norms, an fp32 layer meets the bf16 latents: without autocast that fails."""
            def __init__(self, vdiff):
                super().__init__()
                self.backbone = vdiff
                self.head = torch.nn.Linear(1, 1)
            def forward(self, latents, prompt_embeds, timesteps):
                log("model", list(latents.shape), str(latents.dtype), timesteps,
                    list(prompt_embeds.shape), str(prompt_embeds.dtype))
                self.head(latents[..., :1, :1].reshape(-1, 1))  # fp32 weights, bf16 input
                return latents.clone()
    ''',
}


def test_rem_wan_glue(tmp_path, monkeypatch, fresh_modules):
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch")
    import argparse

    repo = _write(tmp_path / "rem", REM_WAN)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    state = {"head.weight": torch.full((1, 1), 2.0), "head.bias": torch.zeros(1),
             "extra": torch.ones(1)}
    # upstream's format (train_REM_wan.py): the whole wrapper's state, optimizer, epoch, args
    torch.save({"model_state": state, "optimizer": {}, "epoch": 1, "iteration": 5,
                "args": argparse.Namespace(num_frames=73)}, tmp_path / "ckpt.pth")
    model = create("rem-wan", repo=str(repo), checkpoint=str(tmp_path / "ckpt.pth"),
                   base_dir="/wan-diffusers", device="cpu", clip_len="9", size="64")
    pattern = [i % 3 == 0 for i in range(20)]
    with pytest.warns(UserWarning, match="1 unexpected keys"):
        masks = model.predict(_frames(pattern), "smoke")
    assert model.unexpected_keys == ["extra"]
    assert float(model.model.head.weight.detach()) == 2.0
    assert [bool(m.any()) for m in masks] == pattern  # tail clip stitched in the right place
    assert masks[0, :, :20].all() and not masks[0, :, 20:].any()
    calls = _log(log)
    assert calls[0] == ["build", "/wan-diffusers"]
    assert ["tokenizer", "smoke", "max_length", 512, True, True] in calls
    # by hand: clips 0-9, 9-18, then the last 9 frames (11-20) keeping 18-20; 9 frames are
    # 3 latent frames; the text is cut to 77 tokens; everything the DiT gets is bf16
    assert [c[1:] for c in calls if c[0] == "model"] == \
        [[[1, 16, 3, 8, 8], "torch.bfloat16", 0, [1, 77, 4096], "torch.bfloat16"]] * 3
    short = model.predict(_frames([1, 0, 1]), "x")  # shorter than 5: padded, then cropped
    assert short.shape == (3, 30, 40) and [bool(m.any()) for m in short] == [True, False, True]
    assert model.shorter_clip_len(40) == 5 and model.clip_len == 5


def test_rem_wan_without_bf16_autocast_meets_the_dtype_mix(tmp_path, monkeypatch, fresh_modules):
    """What upstream's autocast is for: the stand-in's fp32 layer refuses bf16 inputs."""
    torch = pytest.importorskip("torch", reason="the wrapper glue needs torch")
    repo = _write(tmp_path / "rem", REM_WAN)
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log.jsonl"))
    torch.save({"model_state": {}}, tmp_path / "ckpt.pth")
    model = create("rem-wan", repo=str(repo), checkpoint=str(tmp_path / "ckpt.pth"),
                   base_dir="/wan", device="cpu", clip_len="5", size="64", bf16="false")
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="dtype"):
        model.predict(_frames([1] * 5), "x")


# --- VD-IT --------------------------------------------------------------------------------------
VDIT = {
    # Mirrors VD-IT@e44bd79: opts.py get_args_parser (only the flags the wrapper passes), and
    # models/__init__.py build_model_diff_cross(args) -> (model, criterion, postprocessors) whose
    # VDIT.forward(samples, captions, targets) (models/diffvos_cross.py) on the non-a2d/jhmdb path
    # picks the best query itself and returns pred_masks [b, t, 1, H_pad, W_pad] logits at the
    # padded input size (pixel_shuffle(4) of stride-4 mask features).
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
    # Mirrors UniRef@16442cf: the vendored detectron2's config.get_cfg / checkpoint.
    # DetectionCheckpointer / modeling.build_model, detectron2.projects.uniref.add_uniref_config,
    # and projects/UniRef/uniref/uniref.py: forward() -> inference_rvos_vl() for
    # task "rvos" / dataset "refytvos", which calls forward_text([x["expressions"] ...]) (a
    # ValueError unless each is a str) and writes 0/255 'L' PNGs to
    # save_path_prefix/<video>/<exp_id>/<file name without .jpg>.png.
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
            def forward_text(self, captions, device):
                if not isinstance(captions[0], str):
                    raise ValueError("Please mask sure the caption is a list of string")
            def __call__(self, batches):
                b = batches[0]
                assert b["task"] == "rvos" and b["dataset_name"].startswith("refytvos")
                self.forward_text([x["expressions"] for x in batches], device="cuda")
                with open(os.environ["STANDIN_LOG"], "a") as f:
                    f.write(json.dumps({k: v for k, v in b.items() if k != "image"}) + "\\n")
                    f.write(json.dumps([list(i.shape) + [str(i.dtype)] for i in b["image"]][:1]) + "\\n")
                for name in b["file_names"]:
                    stem = name.split("/")[-1].replace(".jpg", "")
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
    assert batch["expressions"] == "the dogs tail end"  # a str, as the test-time mapper leaves it
    assert (batch["height"], batch["width"]) == (90, 160) and len(batch["file_names"]) == 3
    assert shapes == [[3, 480, 853, "torch.uint8"]]  # ResizeShortestEdge(480, 1333), CHW uint8
    assert model.model.loaded == "/ckpt/swinl.pth"
    assert model.model.cfg["merged"].endswith("configs/eval/swin-l/eval_rvos_swin-l.yaml")
    assert model.model.cfg["MODEL"]["WEIGHTS"] == "/ckpt/swinl.pth"
    assert masks.shape == (3, 90, 160) and masks[:, :45].all() and not masks[:, 45:].any()


def test_vdit_set_device_gets_an_index():
    pytest.importorskip("torch", reason="needs torch")
    from refvps.baselines.models.vdit import cuda_index

    assert cuda_index("cuda:3") == 3 and cuda_index("cuda:0") == 0
