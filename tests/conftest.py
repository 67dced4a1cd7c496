"""Shared fixtures: tiny models written once per session, and a helper that drives snakemake."""

from __future__ import annotations

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
    from hyperface.tiny_models import write_all

    return write_all(tmp_path_factory.mktemp("tiny"), seed=0, resolution=64)


def demo_config(**overrides) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config


def run_snakemake(workdir: Path, config: dict, *args: str, check: bool = True,
                  timeout: float = 1800) -> subprocess.CompletedProcess:
    """``snakemake -s <repo>/Snakefile -d workdir --configfile workdir/config.yaml *args``."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(cfg),
           "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry-run's "Job stats" table (empty when nothing is planned)."""
    counts: dict[str, int] = {}
    lines = (proc.stdout + proc.stderr).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    except StopIteration:
        return counts
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def copy_workdir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
