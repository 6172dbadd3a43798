"""The controlled vocabulary of the published results' ``setting`` column (no heavy imports:
the CLI builds its choices from it)."""

SETTINGS: dict[str, str] = {
    "standard": "the benchmark's usual protocol, as the citing paper compares it (for the "
                "evaluation-only Ref-VPS, BURST and VSPW: zero-shot, trained on referring data)",
    "zero-shot": "trained only on another benchmark's training set (SOLA Table 2: MeViS)",
    "combined-training": "re-trained on the union of MeViS and Ref-YouTube-VOS training sets "
                         "(SOLA Table 3)",
    "trained-on-target": "training includes the evaluated benchmark's own data where its "
                         "standard protocol has none (Ref-DAVIS17 in UniRef/UniRef++ joint "
                         "training, RefSAM fine-tuned per dataset)",
    "24fps": "scored on frames sampled at 24 fps, with temporal consistency (REM Table H)",
}
"""The controlled vocabulary of ``setting``; rows of different settings are ranked apart."""
LOCAL_SETTING = "local"
"""The setting of local runs; they rank with the ``standard`` rows of their benchmark/split."""
