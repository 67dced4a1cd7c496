"""The demo DAG through a real SLURM cluster (tests/slurm/cluster.sh) with profiles/slurm.

Needs Debian's slurm-wlm, slurmdbd, munge and mariadb-server and root; `.ci/run` installs them.
Outside CI, without them, the test is skipped; in CI (CI=true) their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from .conftest import REPO, SNAKEMAKE
from .test_workflow import small_config

pytestmark = pytest.mark.slurm

GPU_RULES = {"gallery_shard", "pack", "generate_shard", "align_shard", "train", "evaluate", "leakage"}
CPU_RULES = {"tiny_models", "stats"}
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"


def _have_slurm() -> bool:
    tools = ["slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sacct"]
    return all(shutil.which(t) for t in tools) and os.geteuid() == 0


@pytest.fixture
def cluster(tmp_path):
    if not _have_slurm():
        if os.environ.get("CI"):
            pytest.fail("CI must run the SLURM test: install slurm-wlm slurmdbd munge mariadb-server")
        pytest.skip("no SLURM daemons here (apt-get install slurm-wlm slurmdbd munge mariadb-server)")
    state = tmp_path / "cluster"
    subprocess.run(["timeout", "-k", "10", "300", str(CLUSTER), "start", str(state)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}  # configs sit in /etc/slurm
    try:
        yield env
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], check=False)


def test_demo_dag_runs_through_slurm(cluster, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(small_config(), sort_keys=False))
    cmd = ["timeout", "-k", "30", "1500", str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--profile", str(REPO / "profiles" / "slurm"),
           "--workflow-profile", str(REPO / "tests" / "slurm" / "profile")]
    proc = subprocess.run(cmd, env=cluster, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (workdir / "results/eval/summary.md").exists()

    sacct = subprocess.run(["sacct", "-X", "-n", "-P", "--format=JobID,Comment,State,AllocTRES"],
                           env=cluster, capture_output=True, text=True, check=True).stdout
    print("sacct -X --format=JobID,Comment,State,AllocTRES\n" + sacct)
    rows = [line.split("|") for line in sacct.strip().splitlines()]
    by_rule: dict[str, list[tuple[str, str]]] = {}
    for _, comment, state, tres in rows:
        rule = comment.removeprefix("rule_").split("_wildcards_")[0]
        by_rule.setdefault(rule, []).append((state, tres))
    assert set(by_rule) >= GPU_RULES | CPU_RULES, sorted(by_rule)
    assert all(state == "COMPLETED" for jobs in by_rule.values() for state, _ in jobs)
    for rule in GPU_RULES:
        assert all("gres/gpu=1" in tres for _, tres in by_rule[rule]), (rule, by_rule[rule])
    for rule in CPU_RULES:
        assert all("gres/gpu" not in tres for _, tres in by_rule[rule]), (rule, by_rule[rule])
    # local rules ran on the submitting host, not through the scheduler
    assert not {"gallery", "dataset", "summary", "plots"} & set(by_rule)
    assert len(by_rule["generate_shard"]) == 3 and len(by_rule["gallery_shard"]) == 2
