"""Unconditional gallery generators: the faces whose embeddings approximate the face manifold.

Each backend maps gallery indices to RGB uint8 images; the draw for index i depends only on
(seed, i), so a gallery is the same whatever its sharding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from hyperface.loading import WeightsError, load_diffusers, require
from hyperface.seeding import torch_generator

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
GENERATORS = ("stylegan2", "mobilestylegan", "ldm", "folder")


class GalleryGenerator(Protocol):
    def generate(self, indices: list[int], seed: int) -> list[np.ndarray]: ...


def _to_uint8(images: np.ndarray) -> list[np.ndarray]:
    return list((np.clip(images, 0.0, 1.0) * 255.0).round().astype(np.uint8))


class LDMGallery:
    """A diffusers unconditional latent-diffusion folder (vqvae/, unet/, scheduler/)."""

    def __init__(self, weights: str | Path, *, device: str = "cpu", steps: int = 50):
        from diffusers import DDIMScheduler, LDMPipeline, UNet2DModel, VQModel

        folder = require(weights, "LDM pipeline folder")
        vqvae = load_diffusers(VQModel, folder / "vqvae")
        unet = load_diffusers(UNet2DModel, folder / "unet")
        require(folder / "scheduler" / "scheduler_config.json", "LDM scheduler config")
        scheduler = DDIMScheduler.from_pretrained(folder, subfolder="scheduler")
        self.pipe = LDMPipeline(vqvae=vqvae, unet=unet, scheduler=scheduler).to(device)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps = steps

    @torch.no_grad()
    def generate(self, indices: list[int], seed: int) -> list[np.ndarray]:
        generators = [torch_generator(seed, "gallery", i) for i in indices]
        out = self.pipe(
            batch_size=len(indices),
            generator=generators,
            num_inference_steps=self.steps,
            output_type="np",
        ).images
        return _to_uint8(out)


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder``, in a deterministic (sorted relative path) order."""
    folder = require(folder, "gallery image folder")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise WeightsError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_rgb(path: Path, min_size: int = 32) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise WeightsError(f"{path}: unreadable image ({err})") from err
    if min(rgb.shape[:2]) < min_size:
        raise WeightsError(
            f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]}, smaller than {min_size}px"
        )
    return rgb


class FolderGallery:
    """Real face images from a directory (the paper's best gallery ablation)."""

    def __init__(self, weights: str | Path):
        self.files = list_images(weights)

    def generate(self, indices: list[int], seed: int) -> list[np.ndarray]:  # noqa: ARG002
        if indices and max(indices) >= len(self.files):
            raise WeightsError(
                f"gallery.size asks for image {max(indices) + 1} but the folder has "
                f"{len(self.files)}"
            )
        return [read_rgb(self.files[i]) for i in indices]


def load_gallery_generator(
    name: str,
    weights: str | Path,
    *,
    device: str = "cpu",
    steps: int = 50,
    truncation_psi: float = 0.7,
    noise_mode: str = "const",
    threads: int = 0,
) -> GalleryGenerator:
    if name == "ldm":
        return LDMGallery(weights, device=device, steps=steps)
    if name == "folder":
        return FolderGallery(weights)
    if name == "stylegan2":
        from hyperface.generators.stylegan2 import StyleGAN2Gallery

        return StyleGAN2Gallery(
            weights, device=device, truncation_psi=truncation_psi, noise_mode=noise_mode
        )
    if name == "mobilestylegan":
        from hyperface.generators.mobilestylegan import MobileStyleGANGallery

        return MobileStyleGANGallery(weights, truncation_psi=truncation_psi, threads=threads)
    raise ValueError(f"gallery.generator must be one of {GENERATORS}, got {name!r}")
