"""REM (ReferEverything) contract: tiny ModelScope-T2V and Wan2.1 bases in diffusers layout.

What a user downloads, shrunk: a base-model folder as ``save_pretrained`` of the upstream
pipeline writes it (``ali-vilab/text-to-video-ms-1.7b``: ``TextToVideoSDPipeline`` with a CLIP
tokenizer and text encoder, ``AutoencoderKL``, ``UNet3DConditionModel``, ``DDIMScheduler``;
``Wan-AI/Wan2.1-T2V-14B-Diffusers``: ``WanPipeline`` with a T5 tokenizer, ``UMT5EncoderModel``,
``AutoencoderKLWan``, ``WanTransformer3DModel``, ``UniPCMultistepScheduler`` for flow
prediction), and a fine-tuned
checkpoint as upstream's training scripts save it (``train_REM_MS_vid.py``: ``{"unet",
"optimizer", "epoch", "args"}``; ``train_REM_wan.py``: ``{"model_state", "optimizer", "epoch",
"iteration", "args"}`` with the whole ``WanVdiff_wrapper`` state). Weights are random (seeded);
the fine-tuned weights differ from the base ones so that loading them is visible.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

from refvps.baselines.contract import ContractSpec

CLIP_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
T5_PIECES = ["<pad>", "</s>", "<unk>"] + [f"\u2581{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + \
    list("abcdefghijklmnopqrstuvwxyz0123456789.,'-")


def _clip_tokenizer(folder: Path):
    """A byte-level CLIP BPE tokenizer with no merges: every byte is a token."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {token: i for i, token in enumerate(chars + [c + "</w>" for c in chars]
                                                + list(CLIP_SPECIALS))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         model_max_length=77)


def _t5_tokenizer():
    """A character-level unigram tokenizer in T5's fast-tokenizer format (eos appended)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    tokenizer = Tokenizer(models.Unigram([(piece, -1.0) for piece in T5_PIECES], unk_id=2))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                             special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                           unk_token="<unk>", extra_ids=0)


def _perturb(module, seed: int) -> None:
    """Re-draw every floating parameter (the 'fine-tuned' weights differ from the base)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            if param.is_floating_point():
                param.add_(0.02 * torch.randn(param.shape, generator=generator))


def write_ms(folder: Path) -> Dict[str, str]:
    import argparse

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    base = folder / "text-to-video-ms-tiny"
    tokenizer = _clip_tokenizer(folder / "clip-vocab")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3,
                        block_out_channels=(32, 32, 64), layers_per_block=1, sample_size=32)
    unet = UNet3DConditionModel(sample_size=8, in_channels=4, out_channels=4,
                                down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                                up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
                                block_out_channels=(32, 64), layers_per_block=1,
                                cross_attention_dim=32, attention_head_dim=8)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                          scheduler=scheduler).save_pretrained(str(base))
    _perturb(unet, 1)
    checkpoint = folder / "rem-ms-tiny.pth"
    torch.save({"unet": unet.state_dict(), "optimizer": {"state": {}, "param_groups": []},
                "epoch": 0, "args": argparse.Namespace(num_frames=72, lr=1e-5)}, checkpoint)
    return {"checkpoint": str(checkpoint), "base_model": str(base), "size": "32",
            "clip_len": "16", "vae_chunk": "8"}


def write_wan(folder: Path) -> Dict[str, str]:
    import argparse

    import torch
    from diffusers import (AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline,
                           WanTransformer3DModel)
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    base = folder / "wan2.1-t2v-tiny-diffusers"
    tokenizer = _t5_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0))
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2,
                                        attention_head_dim=12, in_channels=16, out_channels=16,
                                        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2,
                                        cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        num_train_timesteps=1000, flow_shift=3.0)
    WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                vae=vae, scheduler=scheduler).save_pretrained(str(base))
    _perturb(transformer, 1)
    state = {f"backbone.dit.{k}": v for k, v in transformer.state_dict().items()}
    state.update({f"backbone.vae.{k}": v for k, v in vae.state_dict().items()})
    state.update({f"backbone.text_encoder.{k}": v for k, v in text_encoder.state_dict().items()})
    checkpoint = folder / "rem-wan-tiny.pth"
    torch.save({"model_state": state, "optimizer": {"state": {}, "param_groups": []},
                "epoch": 0, "iteration": 0, "args": argparse.Namespace(num_frames=73)},
               checkpoint)
    return {"checkpoint": str(checkpoint), "base_dir": str(base), "size": "32"}


def write_checkpoint(model: str, repo: Path, folder: Path) -> Dict[str, str]:
    return write_ms(folder) if model == "rem-ms" else write_wan(folder)


SPEC = ContractSpec(family="rem", models=("rem-ms", "rem-wan"), repo_folder="ReferEverything",
                    commit="6dcc5a9", envs={"rem-ms": "rem-ms.txt", "rem-wan": "rem-wan.txt"},
                    needs_cuda=False, write_checkpoint=write_checkpoint)
