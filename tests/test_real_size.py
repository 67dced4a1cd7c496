"""The GPU path's models at their real sizes, random weights, on the CPU: each one through the
code the workflow loads and runs it with, at the smallest count (one image, one step), so a shape,
dtype or format that only the real downloads have fails here and not on the first GPU hour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperface.generators.real_size import write_real_size


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return write_real_size(tmp_path_factory.mktemp("real-size"))


def test_arc2face_on_sd15_draws_a_512_px_image_in_one_step(real):
    from hyperface.generators.arc2face import Arc2FaceGenerator

    gen = Arc2FaceGenerator(real["arc2face"], real["base_model"], steps=1, resolution=512)
    unet = sum(p.numel() for p in gen.pipe.unet.parameters())
    assert unet == pytest.approx(859.5e6, rel=1e-3)  # Stable Diffusion 1.5's UNet
    assert gen.text_encoder.config.hidden_size == 768 and gen.latent_shape == (4, 64, 64)
    assert gen.dtype == torch.float32  # float16 files, float32 on a CPU
    identity = torch.nn.functional.normalize(torch.randn(1, 512), dim=1).numpy()
    images = gen.generate(identity, torch.randn(1, *gen.latent_shape))
    assert images.shape == (1, 512, 512, 3) and images.dtype == np.uint8
    assert images.std() > 0  # not a constant image


def test_arcface_r100_loads_through_insightface_and_embeds(real):
    from hyperface.recognition.embedders import InsightFaceEmbedder

    model = InsightFaceEmbedder(real["arcface"])
    assert model.dim == 512
    emb = model.embed([np.random.default_rng(0).integers(0, 256, (112, 112, 3), np.uint8)])
    assert emb.shape == (1, 512) and emb.dtype == np.float32
    assert np.isfinite(emb).all() and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)


def test_stylegan2_ffhq_1024_draws_a_gallery_face(real):
    from hyperface.generators.stylegan2 import StyleGAN2Gallery

    gallery = StyleGAN2Gallery(real["stylegan2"])
    assert sum(p.numel() for p in gallery.model.parameters()) > 28e6  # config F: ~30M
    (face,) = gallery.generate([0], seed=0)
    assert face.shape == (1024, 1024, 3) and face.dtype == np.uint8 and face.std() > 0


def test_iresnet50_loads_as_trained_and_embeds(real):
    from hyperface.recognition.training import load_backbone
    from hyperface.storage.images import to_network

    model = load_backbone(real["iresnet50"])
    assert sum(p.numel() for p in model.parameters()) > 40e6
    with torch.no_grad():
        unit, norm = model(to_network([np.zeros((112, 112, 3), np.uint8)]))
    assert unit.shape == (1, 512) and unit.dtype == torch.float32 and norm.shape == (1, 1)
    assert float(unit.norm()) == pytest.approx(1.0, abs=1e-5)
