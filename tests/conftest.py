"""Shared fixtures: tiny models written once per session, and a helper that drives snakemake."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Every tiny model, written once through the same code the tiny_models rule runs."""
    from hyperface.generators.tiny import write_all

    return write_all(tmp_path_factory.mktemp("tiny"), seed=0, resolution=64)


def demo_config(**overrides) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = copy.deepcopy(value)  # a shared override must never be edited by the next
    return config


def run_snakemake(
    workdir: Path,
    config: dict,
    *args: str,
    check: bool = True,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``snakemake -s <repo>/Snakefile -d workdir --configfile workdir/config.yaml *args``,
    in this environment or ``env``."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry-run's "Job stats" table (empty when nothing is planned)."""
    counts: dict[str, int] = {}
    lines = (proc.stdout + proc.stderr).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    except StopIteration:
        return counts
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def copy_workdir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


# The micro config: 8 identities x 2 images, 1 epoch - every stage, in about half a minute. The
# workflow tests that compare a re-run with a fresh run share its runs.
# The demo with the tiny random Arc2Face (the GPU runs' generator, here drawing textures) in place
# of the MobileStyleGAN identities: fast, and it keeps Arc2Face's path under test (the
# MobileStyleGAN identities have tests of their own, and the demo run).
ARC2FACE_TINY = {
    "generation.generator": "arc2face",
    "generation.weights": "resources/tiny/arc2face",
    "generation.base_model": "resources/tiny/stable-diffusion-v1-5",
    "generation.resolution": 64,
    "generation.steps": 4,
    "generation.batch_size": 6,
    "alignment.fallback": "center_crop",
    "dataset.keep_undetected": True,  # textures have no face: train on the centre crops
}

MICRO = {
    **ARC2FACE_TINY,
    "gallery.size": 8,
    "gallery.shard_size": 8,
    "gallery.batch_size": 8,
    "packing.n_identities": 8,
    "packing.iterations": 20,
    "packing.lr_step": 10,
    "packing.checkpoint_every": 10,
    "packing.trace_every": 5,
    "generation.images_per_identity": 2,
    "generation.identities_per_shard": 4,
    "generation.steps": 2,
    "generation.batch_size": 2,
    "evaluation.holdout_identities": 5,
    "training.epochs": 1,
    "training.batch_size": 4,
    "training.milestones": [],
    "leakage.top_k": 2,
    "export.imagefolder": False,
    "export.rec": False,
}


def micro_config(**overrides) -> dict:
    return demo_config(**{**MICRO, **overrides})


@pytest.fixture(scope="session")
def tiny_resources(tmp_path_factory) -> Path:
    """A workdir skeleton holding resources/tiny as the tiny_models rule writes it (same code,
    same seed), so fresh runs of the demo-derived configs skip that 12 s job, and
    resources/packaged as the packaged_weights rule copies it (linked: 80 MB, shared)."""
    from hyperface.generators.packaged import PACKAGED, copy_packaged
    from hyperface.generators.tiny import write_all

    base = tmp_path_factory.mktemp("skeleton")
    write_all(base / "resources" / "tiny", seed=0, resolution=64)
    shared = tmp_path_factory.mktemp("packaged")
    (base / "resources" / "packaged").mkdir()
    for name in PACKAGED:
        (base / "resources" / "packaged" / name).symlink_to(copy_packaged(name, shared / name))
    return base


def fresh_workdir(skeleton: Path, dst: Path) -> Path:
    """An empty workdir with the tiny models in place: a run there starts from nothing else."""
    return copy_workdir(skeleton, dst)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """One complete run of the demo config as shipped, from an empty folder, shared by tests."""
    workdir = tmp_path_factory.mktemp("demo")
    run_snakemake(workdir, demo_config())
    return workdir


def kill_when(workdir: Path, config: dict, target: str, pattern: str, sig: int) -> None:
    """Run snakemake for ``target``; as soon as a file matching ``pattern`` exists, send ``sig``
    to the whole process group (snakemake and its job), as a scheduler would."""
    import os
    import time

    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--cores",
        "2",
        target,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not list(workdir.glob(pattern)):
        assert proc.poll() is None, f"the job ended before {pattern} appeared"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    assert not (workdir / target).exists()
