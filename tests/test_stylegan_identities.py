"""MobileStyleGAN identities: realised from packed references, varied, checked, resumable.

Unit tests on the packaged MobileStyleGAN and SFace; workflow tests on a small config (10 gallery
faces, 4 identities x 2 images) that run the gallery, packing, the variation rule and one
generation shard: a killed shard resumes to an uninterrupted run's manifest, and a changed variant
setting re-runs generation and what follows, to a fresh run's result.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from hyperface.generators.directions import fit_direction
from hyperface.generators.identities import FaceEmbedding, variant
from hyperface.generators.mobilestylegan import (
    STYLE_LAYERS,
    MobileStyleGANGallery,
    per_layer_styles,
)
from hyperface.generators.packaged import copy_packaged
from hyperface.generators.stylegan_identities import anchor_faces
from hyperface.recognition.embedders import load_embedder
from hyperface.recognition.thresholds import impostor_threshold
from hyperface.seeding import numpy_rng
from hyperface.settings import VariantSettings
from hyperface.storage import manifests

from .compare import parquet_content
from .conftest import copy_workdir, demo_config, kill_when, planned_jobs, run_snakemake

GENERATED = "results/generated/shard-00000.parquet"


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> MobileStyleGANGallery:
    folder = copy_packaged("mobilestylegan", tmp_path_factory.mktemp("msg") / "mobilestylegan")
    return MobileStyleGANGallery(folder, truncation_psi=0.7, threads=2)


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> FaceEmbedding:
    folder = copy_packaged("sface", tmp_path_factory.mktemp("sface") / "sface")
    return FaceEmbedding(load_embedder("sface", folder))


def test_style_rows_run_from_the_coarse_layers_to_the_fine(gen):
    """Row j of the per-layer styles feeds the j-th layer from 8 px up: the 8 px block's
    modulations are 512 wide, the 1024 px block's 64 (OpenVINO lists the layers the other way)."""
    import openvino as ov

    model = per_layer_styles(ov.Core().read_model(str(gen._folder / "SynthesisNetwork.xml")))
    widths = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Gather" and op.input_value(0).get_node().get_friendly_name() == (
            "styles"
        ):
            row = int(op.input_value(1).get_node().get_data())
            for target in op.output(0).get_target_inputs():
                if target.get_node().get_type_name() == "MatMul":
                    widths[row] = target.get_node().get_output_partial_shape(0)[1].get_length()
    assert len(widths) == STYLE_LAYERS
    assert widths[0] == widths[1] == 512 and widths[21] == widths[22] == 64


def test_fine_layers_keep_the_person_and_coarse_ones_do_not(gen, face):
    """A donor's styles on layers 12-22 change lighting and colours, not who it is; on layers
    0-11 they make another person (SFace cosine to the original face)."""
    w = gen.gallery_latents([0, 1], seed=0)
    styles = np.repeat(w[:1], STYLE_LAYERS, axis=0)
    anchor = face(gen.draw_styles(styles))
    fine, coarse = styles.copy(), styles.copy()
    fine[12:], coarse[:12] = w[1], w[1]
    fine_cos, coarse_cos = (float(face(gen.draw_styles(s)) @ anchor) for s in (fine, coarse))
    print(f"SFace cosine to the face: donor fine layers {fine_cos:.3f}, coarse {coarse_cos:.3f}")
    assert fine_cos > 0.6 > coarse_cos


def test_a_variant_drawn_twice_is_the_same_image(gen):
    settings = VariantSettings()
    direction = fit_direction(*_linear_attribute(gen.mean_w.shape[1]))
    anchor = gen.gallery_latents([3], seed=0)[0]
    draws = [variant(gen, anchor, settings, direction, numpy_rng(0, "generate", 3, 1, 0))
             for _ in range(2)]  # fmt: skip
    images = [gen.draw_styles(*d) for d in draws]
    assert np.array_equal(*images)
    other = gen.draw_styles(*variant(gen, anchor, settings, direction,
                                     numpy_rng(0, "generate", 3, 2, 0)))  # fmt: skip
    assert not np.array_equal(images[0], other)


def _linear_attribute(dim: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((n, dim)).astype(np.float32)
    return latents, latents[:, :5].sum(1) * 10 + rng.standard_normal(n)


def test_a_direction_moves_its_attribute_by_one_unit_per_step():
    latents, values = _linear_attribute(32, n=300)
    direction = fit_direction(latents, values)
    assert direction.heldout_r > 0.9 and direction.faces == 300
    beta = np.zeros(32)
    beta[:5] = 10
    assert abs(float(direction.step @ beta) - 1.0) < 0.1  # one unit of the attribute a step
    values[:3] = np.nan  # faces without landmarks are left out
    assert fit_direction(latents, values).faces == 297


def test_the_impostor_threshold_accepts_the_share_asked():
    emb = np.random.default_rng(0).standard_normal((400, 16))
    threshold, pairs = impostor_threshold(emb, 0.05)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = (emb @ emb.T)[np.triu_indices(400, 1)]
    assert pairs == len(cos) and abs((cos >= threshold).mean() - 0.05) < 0.001


def test_identities_never_share_a_gallery_face():
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((10, 8))
    refs = np.repeat(gallery[:1], 4, axis=0) + 0.01 * rng.standard_normal((4, 8))
    anchors = anchor_faces(refs, gallery)
    assert len(set(anchors.tolist())) == 4 and 0 in anchors
    with pytest.raises(ValueError, match="gallery.size"):
        anchor_faces(refs, gallery[:3])


# -- the workflow: one shard of a small MobileStyleGAN config ---------------------------------

SMALL = {
    "gallery.size": 10,  # the yaw direction needs 10 faces with landmarks
    "gallery.shard_size": 10,
    "gallery.batch_size": 10,
    "packing.n_identities": 4,
    "packing.iterations": 20,
    "packing.lr_step": 10,
    "packing.checkpoint_every": 10,
    "generation.images_per_identity": 2,
    "generation.identities_per_shard": 4,
    "generation.realise.calls": 2,
    "generation.variants.max_redraws": 1,
    "evaluation.holdout_identities": 2,
}


def small(**overrides) -> dict:
    return demo_config(**{**SMALL, **overrides})


def shard_content(workdir: Path):
    """The generated shard's columns (images included) and metadata, lineage included."""
    return parquet_content(workdir / GENERATED)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("straight")
    run_snakemake(workdir, small(), GENERATED)
    return workdir


@pytest.mark.workflow
def test_a_killed_shard_resumes_to_the_uninterrupted_manifest(uninterrupted, tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    # killed as soon as its first identity is committed
    first = "results/partial/generated/shard-00000/*/0000000.parquet"
    kill_when(workdir, small(), GENERATED, first, signal.SIGKILL)
    run_snakemake(workdir, small(), "--unlock")
    run_snakemake(workdir, small(), GENERATED, "--rerun-incomplete")
    log = (workdir / "results/logs/generated/shard-00000.log").read_text()
    kept = int(log.split("kept ")[1].split()[0])
    assert kept >= 1, log
    assert shard_content(workdir) == shard_content(uninterrupted)


@pytest.mark.workflow
def test_a_variant_setting_reruns_generation_to_a_fresh_runs_result(uninterrupted, tmp_path):
    changed = small(**{"generation.variants.yaw": 10.0})
    workdir = copy_workdir(uninterrupted, tmp_path / "w")
    jobs = planned_jobs(run_snakemake(workdir, changed, "-n"))
    assert jobs["generate_shard"] == 1 and jobs["align_shard"] == 1 and jobs["train"] == 1
    assert "gallery_shard" not in jobs and "pack" not in jobs and "variation" not in jobs
    run_snakemake(workdir, changed, GENERATED)
    fresh = tmp_path / "fresh"
    run_snakemake(fresh, changed, GENERATED)
    assert shard_content(workdir) == shard_content(fresh)
    assert shard_content(workdir) != shard_content(uninterrupted)
    # each identity is realised as a face and records how near it came to its reference
    table = manifests.read_manifest(fresh / GENERATED)
    assert set(table["identity"]) == {0, 1, 2, 3}
    assert table["realised_cos"].between(0, 1).all()
    measured = json.loads((fresh / "results/variation.json").read_text())
    assert (table["identity_cos"] >= measured["accept"]["threshold"]).all()
