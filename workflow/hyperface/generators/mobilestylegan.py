"""MobileStyleGAN gallery: real 1024x1024 FFHQ faces on a laptop's CPU.

MobileStyleGAN (Belousov 2021) distils StyleGAN2's FFHQ generator into a mapping network (z -> w,
512-d) and a wavelet-based synthesis network (w -> RGB in [-1, 1]), published as OpenVINO IR in the
``random-face`` wheel. About 0.6 s per image on one core. The draw for gallery index i is the same
z as the StyleGAN2 backend's (a 512-d normal from the stream (seed, "gallery", i)); truncation
pulls w toward the mean w, estimated once from a fixed set of draws so it does not move with the
seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hyperface.loading import WeightsError, require
from hyperface.seeding import numpy_rng, torch_generator

Z_DIM = 512
MEAN_SAMPLES = 4096


class MobileStyleGANGallery:
    def __init__(self, weights: str | Path, *, truncation_psi: float = 0.7, threads: int = 0):
        import openvino as ov

        folder = require(
            weights, "MobileStyleGAN folder (MappingNetwork.xml, SynthesisNetwork.xml)"
        )
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        try:
            mapping = core.read_model(str(folder / "MappingNetwork.xml"))
            synthesis = core.read_model(str(folder / "SynthesisNetwork.xml"))
        except Exception as err:  # OpenVINO raises its own RuntimeError subclasses
            raise WeightsError(f"{folder}: cannot read the MobileStyleGAN IR ({err})") from err
        mapping.reshape({mapping.inputs[0].get_any_name(): [-1, Z_DIM]})
        self.mapping = core.compile_model(mapping, "CPU", config)
        self.synthesis = core.compile_model(synthesis, "CPU", config)
        self.psi = truncation_psi
        z = (
            numpy_rng(0, "mobilestylegan_mean_w")
            .standard_normal((MEAN_SAMPLES, Z_DIM))
            .astype(np.float32)
        )
        self.mean_w = self.mapping(z)[0].mean(axis=0, keepdims=True)

    def generate(self, indices: list[int], seed: int) -> list[np.ndarray]:
        z = torch.stack(
            [torch.randn(Z_DIM, generator=torch_generator(seed, "gallery", i)) for i in indices]
        ).numpy()
        w = self.mapping(z)[0]
        w = self.mean_w + self.psi * (w - self.mean_w)
        images = []
        for row in w:  # the synthesis IR has a fixed batch of one
            img = self.synthesis(row[None])[0][0]
            images.append(
                np.clip((img.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
            )
        return images
