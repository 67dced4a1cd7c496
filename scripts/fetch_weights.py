#!/usr/bin/env python
"""Put every real model file where config/paper.yaml expects it (run on a machine with internet).

    python scripts/fetch_weights.py                 # everything below resources/weights/
    python scripts/fetch_weights.py --only arc2face sd15
    # what goes where, from where, under which licence
    python scripts/fetch_weights.py --list

Hugging Face downloads use huggingface_hub (installed with diffusers). The StyleGAN2 pickle is
downloaded as published and must then be converted once with scripts/convert_stylegan2.py on a
machine with the official code; the workflow never unpickles model files. Benchmark .bin files
(LFW, CPLFW, CALFW, CFP-FP, AgeDB-30) come with insightface's training-data packages (e.g.
faces_emore / MS1MV2) and are copied by hand into resources/benchmarks/.
"""

from __future__ import annotations

import argparse
import urllib.request
from pathlib import Path

ROOT = Path("resources/weights")
SOURCES = {
    "arc2face": {
        "repo": "FoivosPar/Arc2Face",
        "dest": ROOT / "arc2face",
        "licence": "MIT (model card)",
        "files": [
            "arc2face/config.json",
            "arc2face/diffusion_pytorch_model.safetensors",
            "encoder/config.json",
            "encoder/pytorch_model.bin",
            "arcface.onnx",
        ],
    },
    "sd15": {
        "repo": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "dest": ROOT / "stable-diffusion-v1-5",
        "licence": "CreativeML Open RAIL-M",
        "files": [
            "model_index.json",
            "tokenizer/vocab.json",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
            "scheduler/scheduler_config.json",
        ],
    },
    "ldm": {
        "repo": "CompVis/ldm-celebahq-256",
        "dest": ROOT / "ldm-celebahq-256",
        "licence": "see the model card",
        "files": None,  # the whole diffusers folder
    },
    "stylegan2": {
        "url": "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
        "stylegan2-ffhq-1024x1024.pkl",
        "dest": ROOT / "stylegan2",
        "licence": "NVIDIA Source Code License-NC (non-commercial)",
        "files": ["stylegan2-ffhq-1024x1024.pkl"],
    },
}


def fetch(name: str) -> None:
    src = SOURCES[name]
    dest: Path = src["dest"]
    dest.mkdir(parents=True, exist_ok=True)
    if "url" in src:
        target = dest / src["files"][0]
        if not target.exists():
            print(f"{name}: {src['url']} -> {target}")
            urllib.request.urlretrieve(src["url"], target)
        print(
            f"{name}: now run scripts/convert_stylegan2.py {target} "
            f"{target.with_suffix('.safetensors')}"
        )
        return
    from huggingface_hub import hf_hub_download, snapshot_download

    if src["files"] is None:
        snapshot_download(src["repo"], local_dir=dest)
    else:
        for f in src["files"]:
            hf_hub_download(src["repo"], f, local_dir=dest)
    print(f"{name}: {src['repo']} -> {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", nargs="+", choices=sorted(SOURCES))
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for name, src in SOURCES.items():
            print(
                f"{name:10} {src.get('repo') or src['url']}\n{'':10} -> {src['dest']}  "
                f"[{src['licence']}]"
            )
        return
    for name in args.only or SOURCES:
        fetch(name)


if __name__ == "__main__":
    main()
