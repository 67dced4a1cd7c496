#!/usr/bin/env python
"""Convert an official StyleGAN2 checkpoint's G_ema into the safetensors file hyperface loads.

Run once, on a machine that has the official code (https://github.com/NVlabs/stylegan2-ada-pytorch,
for its dnnlib/torch_utils/legacy modules), e.g. for FFHQ 1024x1024 (stylegan2-ffhq-1024x1024.pkl,
or the TF-era ffhq.pkl, which legacy.py converts):

    PYTHONPATH=/path/to/stylegan2-ada-pytorch python scripts/convert_stylegan2.py \\
        stylegan2-ffhq-1024x1024.pkl
resources/weights/stylegan2/stylegan2-ffhq-1024x1024.safetensors

The official pickle is unpickled here, by the official loader - that is the point of converting
once: the workflow itself only ever reads the safetensors file. The tensor names are the official
ones; the architecture goes into the file's metadata. The result is loaded back through
hyperface.generators.stylegan2 and compared with the official generator on a few latents before it
is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("pkl", help="official network pickle (needs the official code on PYTHONPATH)")
    ap.add_argument("out", help="output .safetensors")
    args = ap.parse_args()

    import legacy  # the official repository's module
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
    from hyperface.generators.stylegan2 import StyleGAN2Generator

    with open(args.pkl, "rb") as f:
        official = legacy.load_network_pkl(f)["G_ema"].eval().float()
    if official.c_dim:
        raise SystemExit("conditional generators are not supported (c_dim > 0)")
    syn = official.synthesis
    last = syn.block_resolutions[-1]
    arch = {
        "z_dim": official.z_dim,
        "w_dim": official.w_dim,
        "img_resolution": official.img_resolution,
        # channels(res) = min(channel_base // res, channel_max): recovered from the blocks
        "channel_base": getattr(syn, f"b{last}").conv1.weight.shape[0] * last,
        "channel_max": max(
            getattr(syn, f"b{r}").conv1.weight.shape[0] for r in syn.block_resolutions
        ),
        "mapping_layers": official.mapping.num_layers,
    }
    state = {k: v.detach().cpu().contiguous() for k, v in official.state_dict().items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, args.out, metadata={k: json.dumps(v) for k, v in arch.items()})

    ours = StyleGAN2Generator.from_safetensors(args.out)
    z = torch.randn(4, official.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = official(z, None, truncation_psi=0.7, noise_mode="const", force_fp32=True)
        got = ours(z, 0.7, "const")
    err = float((ref - got).abs().max())
    print(f"wrote {args.out}: {arch}; max |official - ours| on 4 latents = {err:.2e}")
    if err > 1e-3:
        Path(args.out).unlink()
        raise SystemExit("outputs differ: conversion rejected")


if __name__ == "__main__":
    main()
