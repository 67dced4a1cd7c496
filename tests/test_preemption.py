"""Long jobs survive being killed: SIGTERM (SLURM's warning) or SIGKILL, then a plain re-run."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from hyperface.storage import manifests

from .conftest import copy_workdir, kill_when, run_snakemake
from .test_workflow import small_config

pytestmark = pytest.mark.workflow

PACK_CONFIG = small_config(
    **{
        "packing.iterations": 3000,
        "packing.checkpoint_every": 200,
        "packing.trace_every": 200,
        "packing.objective": "softmin",
    }
)
REFERENCES = "results/references.parquet"


@pytest.fixture(scope="module")
def with_gallery(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("gallery")
    run_snakemake(workdir, PACK_CONFIG, "results/gallery.parquet")
    return workdir


@pytest.fixture(scope="module")
def uninterrupted(with_gallery, tmp_path_factory) -> np.ndarray:
    workdir = copy_workdir(with_gallery, tmp_path_factory.mktemp("straight") / "w")
    run_snakemake(workdir, PACK_CONFIG, REFERENCES)
    return manifests.read_embeddings(workdir / REFERENCES)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_pack_resumes_to_the_same_references(with_gallery, uninterrupted, tmp_path, sig):
    workdir = copy_workdir(with_gallery, tmp_path / "w")
    kill_when(workdir, PACK_CONFIG, REFERENCES, "results/pack/checkpoint-*.pt", sig)
    if sig == signal.SIGKILL:  # snakemake itself died without releasing its lock, as after a crash
        run_snakemake(workdir, PACK_CONFIG, "--unlock")
    run_snakemake(workdir, PACK_CONFIG, REFERENCES, "--rerun-incomplete")
    log = (workdir / "results/logs/pack.log").read_text()
    assert "resumed from" in log
    meta = manifests.read_meta(workdir / REFERENCES)
    assert 0 < meta["iterations_run"] < 3000
    np.testing.assert_array_equal(manifests.read_embeddings(workdir / REFERENCES), uninterrupted)


TRAIN_CONFIG = small_config(
    **{"training.epochs": 8, "training.batch_size": 4, "training.milestones": [6]}
)
WEIGHTS = "results/train/model.safetensors"


def test_terminated_training_resumes_mid_epoch(tmp_path_factory, tmp_path):
    from safetensors.torch import load_file

    prepared = tmp_path_factory.mktemp("dataset")
    run_snakemake(prepared, TRAIN_CONFIG, "results/dataset.parquet")
    straight = copy_workdir(prepared, tmp_path / "straight")
    run_snakemake(straight, TRAIN_CONFIG, WEIGHTS)

    workdir = copy_workdir(prepared, tmp_path / "killed")
    kill_when(workdir, TRAIN_CONFIG, WEIGHTS, "results/train/checkpoint-*.pt", signal.SIGTERM)
    log = (workdir / "results/logs/train.log").read_text()
    assert "stopped by signal" in log  # the job checkpointed on SIGTERM, mid-epoch
    run_snakemake(workdir, TRAIN_CONFIG, WEIGHTS, "--rerun-incomplete")
    log = (workdir / "results/logs/train.log").read_text()
    assert "resumed from" in log
    a, b = load_file(straight / WEIGHTS), load_file(workdir / WEIGHTS)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())
