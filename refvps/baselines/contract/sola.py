"""SOLA contract: a tiny SAM2 (sam2's own Hiera-T config, shrunk by hydra overrides), a tiny
RoBERTa with a word-level tokenizer in Hugging Face layout, and a selector built by upstream's
``module/module.py`` from its ``configs/mevis/default.yaml`` with a shrunk ``model`` section,
saved as ``train.py`` saves it (a bare ``state_dict``)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from refvps.baselines.contract import ContractSpec

SAM2_CONFIG = "sam2_hiera_t.yaml"
SAM2_OVERRIDES = (
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.dim_feedforward=64",
    "++model.num_maskmem=2",
    # hidden size 256 -> 64 (also the size of the obj_ptr tokens SOLA reads)
    "++model.image_encoder.neck.d_model=64",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=64",
    "++model.memory_attention.d_model=64",
    "++model.memory_attention.layer.d_model=64",
    "++model.memory_attention.layer.self_attention.embedding_dim=64",
    "++model.memory_attention.layer.cross_attention.embedding_dim=64",
    "++model.memory_encoder.in_dim=64",
    "++model.memory_encoder.mask_downsampler.embed_dim=64",
    "++model.memory_encoder.fuser.layer.dim=64",
)
"""SAM2's image size stays 1024: ``SAM2ImagePredictor`` (the automatic mask generator's)
hard-codes the feature sizes of a 1024-pixel input."""

SELECTOR = {"object_token_dim": 64, "lang_token_dim": 32, "n_layers": 1, "n_negative": 4,
            "max_temporal_length": 100}
WORDS = ("the a an of on in to and is left right red blue man dog cat ball water ice smoke "
         "fire candle melting burning moving object").split()


def _tiny_text_model(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    special = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {word: index for index, word in enumerate(special + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", pad_token="<pad>",
                            eos_token="</s>", unk_token="<unk>", model_max_length=64,
                            model_input_names=["input_ids", "attention_mask"]
                            ).save_pretrained(folder)
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=SELECTOR["lang_token_dim"],
                           num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=70, pad_token_id=vocab["<pad>"],
                           bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"])
    RobertaModel(config).save_pretrained(folder)


def write_checkpoint(model: str, repo: Path, folder: Path) -> Dict[str, str]:
    import torch
    import yaml
    from sam2.build_sam import build_sam2

    from refvps.baselines.models.common import enter_upstream

    torch.manual_seed(0)
    sam2 = build_sam2(SAM2_CONFIG, None, device="cpu", hydra_overrides_extra=list(SAM2_OVERRIDES))
    torch.save({"model": sam2.state_dict()}, folder / "sam2_tiny.pt")  # sam2's _load_checkpoint
    _tiny_text_model(folder / "roberta")
    with open(repo / "configs" / "mevis" / "default.yaml", encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["model"].update(SELECTOR, roberta_version=str(folder / "roberta"))
    with open(folder / "sola_tiny.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle)
    enter_upstream(str(repo))
    from module.module import LanguageAlignedTrackSelectionModule

    torch.manual_seed(0)
    selector = LanguageAlignedTrackSelectionModule(config["model"])
    torch.save(selector.state_dict(), folder / "epoch_1.pth")
    return {"checkpoint": str(folder / "epoch_1.pth"), "config": str(folder / "sola_tiny.yaml"),
            "sam2_checkpoint": str(folder / "sam2_tiny.pt"), "sam2_config": SAM2_CONFIG,
            "sam2_overrides": " ".join(SAM2_OVERRIDES), "device": "cpu",
            # random weights: accept every automatic mask and every track; few points and tracks
            "points_per_side": "4", "pred_iou_thresh": "0", "stability_score_thresh": "0",
            "max_tracks": "3", "batch_size": "2", "threshold": "0"}


SPEC = ContractSpec(family="sola", models=("sola",), repo_folder="SOLA", commit="4b0adf8",
                    envs={"sola": "sola.txt"}, needs_cuda=False, write_checkpoint=write_checkpoint,
                    notes="grid tracks only (no GroundingDINO); SAM2 Hiera-T shrunk (16-dim trunk, 1 memory layer)")
