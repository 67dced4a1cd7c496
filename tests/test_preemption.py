"""Long jobs survive being killed: SIGTERM (SLURM's warning) or SIGKILL, then a plain re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hyperface import manifests

from .conftest import REPO, SNAKEMAKE, copy_workdir, run_snakemake
from .test_workflow import small_config

pytestmark = pytest.mark.workflow

PACK_CONFIG = small_config(**{"packing.iterations": 3000, "packing.checkpoint_every": 200,
                              "packing.trace_every": 200, "packing.objective": "softmin"})
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
    (workdir / "config.yaml").write_text(yaml.safe_dump(PACK_CONFIG, sort_keys=False))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "config.yaml"), "--cores", "2", REFERENCES]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not list((workdir / "results/pack").glob("checkpoint-*.pt")):
        assert proc.poll() is None, "pack finished or failed before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, sig)  # the whole job: snakemake and the pack script
    proc.wait(timeout=120)
    assert not (workdir / REFERENCES).exists()

    if sig == signal.SIGKILL:  # snakemake itself died without releasing its lock, as after a crash
        run_snakemake(workdir, PACK_CONFIG, "--unlock")
    run_snakemake(workdir, PACK_CONFIG, REFERENCES, "--rerun-incomplete")
    log = (workdir / "results/logs/pack.log").read_text()
    assert "resumed from" in log
    meta = manifests.read_meta(workdir / REFERENCES)
    assert 0 < meta["iterations_run"] < 3000
    np.testing.assert_array_equal(manifests.read_embeddings(workdir / REFERENCES), uninterrupted)
