"""``python -m refvps.baselines.contract.tiny --model NAME --repo DIR --out DIR``: write a tiny
random-weight checkpoint for NAME inside its environment; prints the model arguments as JSON on
the last line of stdout."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--repo", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from refvps.baselines.contract import spec_for

    spec = spec_for(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    try:
        model_args = spec.write_checkpoint(args.model, args.repo.resolve(), args.out.resolve())
    finally:
        os.chdir(cwd)
    sys.stdout.write(json.dumps({k: str(v) for k, v in model_args.items()}) + "\n")


if __name__ == "__main__":
    main()
