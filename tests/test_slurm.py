"""The workflow through a real SLURM cluster (tests/slurm/cluster.sh) with profiles/slurm.

Every rule of the micro config runs as a SLURM job (GPU rules with a GPU, CPU rules without), and
`pack` and `train` are given more work than their 2-minute time limit: SLURM sends SIGTERM 30 s
before the limit, the job checkpoints and exits, the executor's retry resubmits it, it resumes -
and the references and weights equal those of an uninterrupted run on the same machine.

Needs Debian's slurm-wlm, slurmdbd, munge and mariadb-server and root; `.ci/run` installs them.
Outside CI, without them, the test is skipped; in CI (CI=true) their absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from .compare import differing
from .conftest import REPO, SNAKEMAKE, micro_config

pytestmark = pytest.mark.slurm

GPU_RULES = {
    "gallery_shard",
    "pack",
    "generate_shard",
    "align_shard",
    "train",
    "evaluate",
    "leakage",
}
CPU_RULES = {"tiny_models", "stats", "judge"}
LIMITED = ("pack", "train")  # rules with a time limit shorter than their work in this test
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
# about 2 minutes of work each for pack (one core) and train (two gloo ranks: 600 epochs took
# 375 s beside the cluster): more than one 2-minute attempt can do once SLURM's warning comes
# (60-90 s into the job); the test profile's 7 retries leave room for a busy machine (the rest
# of the suite runs beside this test)
SLURM_CONFIG = micro_config(
    **{
        "packing.iterations": 450_000,
        "packing.lr_step": 100_000,
        "packing.checkpoint_every": 20_000,
        "packing.trace_every": 20_000,
        "training.backbone": "iresnet50",
        "training.width": 16,
        "training.epochs": 250,
        "training.gpus": 2,
    }
)
# the checkpoint a retry resumes from was written on SLURM's signal, not by the periodic ones
RESUMED = {
    "pack": r"resumed from \S+ at iteration (\d+)",
    "train": r"resumed from \S+ at epoch \d+, step (\d+)",
}
COMPARED = [
    "results/references.parquet",
    "results/train/model.safetensors",
    "results/eval/summary.parquet",
]


def _have_slurm() -> bool:
    tools = ["slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sacct"]
    return all(shutil.which(t) for t in tools) and os.geteuid() == 0


@pytest.fixture
def cluster(tmp_path):
    if not _have_slurm():
        if os.environ.get("CI"):
            pytest.fail(
                "CI must run the SLURM test: install slurm-wlm slurmdbd munge mariadb-server"
            )
        pytest.skip(
            "no SLURM daemons here (apt-get install slurm-wlm slurmdbd munge mariadb-server)"
        )
    state = tmp_path / "cluster"
    subprocess.run(["timeout", "-k", "10", "300", str(CLUSTER), "start", str(state)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}  # configs sit in /etc/slurm
    try:
        yield env
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], check=False)


def snakemake_cmd(workdir, *args: str) -> list[str]:
    (workdir / "config.yaml").write_text(yaml.safe_dump(SLURM_CONFIG, sort_keys=False))
    return [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]


def sacct_jobs(env: dict) -> dict[str, list[dict[str, str]]]:
    """Rule -> its SLURM jobs in submission order (state, elapsed, allocated resources)."""
    fields = "JobID,Comment,Partition,Account,State,Elapsed,AllocTRES"
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--starttime=2020-01-01", f"--format={fields}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(f"sacct -X --format={fields}\n" + out)
    jobs: dict[str, list[dict[str, str]]] = {}
    for line in out.strip().splitlines():
        row = dict(
            zip(
                ["id", "comment", "partition", "account", "state", "elapsed", "tres"],
                line.split("|"),
                strict=True,
            )
        )
        jobs.setdefault(row["comment"].removeprefix("rule_").split("_wildcards_")[0], []).append(
            row
        )
    return jobs


def seconds(elapsed: str) -> int:
    h, m, s = (int(x) for x in elapsed.split(":"))
    return 3600 * h + 60 * m + s


def test_workflow_through_slurm_resumes_after_time_limits(cluster, tmp_path):
    # the uninterrupted reference run, on the other core, while the cluster works
    local = tmp_path / "local"
    local.mkdir()
    straight = subprocess.Popen(
        snakemake_cmd(local, "--cores", "1", *COMPARED[:2]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    cmd = [
        "timeout",
        "-k",
        "30",
        "2400",
        *snakemake_cmd(
            workdir,
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--workflow-profile",
            str(REPO / "tests" / "slurm" / "profile"),
            "--verbose",  # logs every sbatch call
        ),
    ]
    proc = subprocess.run(cmd, env=cluster, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    calls = re.findall(r"sbatch call: (.*)", proc.stdout + proc.stderr)
    print("\n".join(re.sub(r" --wrap=.*", " --wrap=...", call) for call in calls))
    # partitions from profiles/slurm/partitions.yaml alone, chosen by what each job asks; no account
    assert calls and not any(" -A " in call for call in calls), calls[:3]
    assert straight.wait(timeout=1200) == 0, straight.stderr.read()[-4000:]
    assert (workdir / "results/eval/summary.md").exists()

    jobs = sacct_jobs(cluster)
    assert set(jobs) >= GPU_RULES | CPU_RULES, sorted(jobs)
    # GPU rules got one GPU on the GPU partition (evaluate asked the generic-resource way; train,
    # with training.gpus 2, two for its two ranks), CPU rules none, on the CPU partition, neither
    # named by a rule; every job under the user's default account
    for rule in GPU_RULES:
        gpus = 2 if rule == "train" else 1
        assert all(
            f"gres/gpu={gpus}" in j["tres"] and j["partition"] == "gpu" for j in jobs[rule]
        ), jobs[rule]
    for rule in CPU_RULES:
        assert all("gres/gpu" not in j["tres"] and j["partition"] == "cpu" for j in jobs[rule]), (
            jobs[rule]
        )
    assert {j["account"] for js in jobs.values() for j in js} == {"root"}
    # local rules ran on the submitting host, not through the scheduler
    assert not {"gallery", "dataset", "summary", "plots", "packaged_weights"} & set(jobs)
    for rule in set(jobs) - set(LIMITED):
        assert all(j["state"] == "COMPLETED" for j in jobs[rule]), (rule, jobs[rule])
    for rule in LIMITED:
        *stopped, last = jobs[rule]
        # stopped by SLURM's warning signal: the job checkpointed and exited before its limit ...
        assert stopped and all(
            j["state"] == "FAILED" and seconds(j["elapsed"]) < 120 for j in stopped
        ), (rule, jobs[rule])
        assert last["state"] == "COMPLETED", (rule, jobs[rule])
        for job in stopped:  # ... the snakemake inside the job got TERM and waited for the rule
            slurm_log = (workdir / f"logs/slurm/rule_{rule}/{job['id']}.log").read_text()
            assert "Will exit after finishing currently running jobs" in slurm_log, slurm_log[
                -2000:
            ]
        # the last attempt resumed from the state written on the signal (Snakemake deletes the
        # rule log of a failed attempt; SLURM's job logs above are kept)
        log = (workdir / f"results/logs/{rule}.log").read_text()
        position = int(re.findall(RESUMED[rule], log)[-1])
        assert rule != "train" or "training on 2 ranks" in log
        print(f"{rule}: {len(stopped)} attempt(s) stopped by SLURM; the last resumed at {position}")
        assert (
            position % SLURM_CONFIG["packing"]["checkpoint_every"] if rule == "pack" else position
        ) > 0
    assert differing(workdir, local, COMPARED[:2]) == []
