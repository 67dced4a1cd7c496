"""Right answers after a change: a partial re-run equals a fresh run of the new config.

One baseline run of the micro config is shared. For each upstream change, a copy of the baseline
(with Snakemake's records) is re-run with the new config, and a fresh folder is run with it from
scratch; references, dataset, weights and evaluation must be equal - content and lineage - and
must differ from the baseline's wherever they lie downstream of the change.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import numpy as np
import pytest

from hyperface.storage import manifests

from .compare import differing, parquet_content
from .conftest import (
    copy_workdir,
    fresh_workdir,
    kill_when,
    micro_config,
    planned_jobs,
    run_snakemake,
)

pytestmark = pytest.mark.workflow

TARGET = "results/eval/summary.md"
COMPARED = [
    "results/references.parquet",
    "results/dataset.parquet",
    "results/train/model.safetensors",
    "results/eval/trained/holdout.parquet",
    "results/eval/summary.parquet",
]
# change -> (new value, whether the packed references lie downstream of it)
CHANGES = {
    "gallery.truncation_psi": (0.4, True),
    "packing.alpha": (0.1, True),
    "generation.beta": (0.3, False),
    "images.aligned": ({"format": "jpeg", "quality": 90}, False),  # the crops training reads
    "dataset.min_reference_cos": ("median", False),
    "leakage.exclude": (True, False),
}


@pytest.fixture(scope="module")
def baseline(tiny_resources, tmp_path_factory) -> Path:
    workdir = fresh_workdir(tiny_resources, tmp_path_factory.mktemp("baseline") / "w")
    run_snakemake(workdir, micro_config())  # every default target: cards, judge, model too
    return workdir


def new_value(key: str, baseline: Path):
    value = CHANGES[key][0]
    if value == "median":  # a filter threshold that removes some training images and keeps some
        dataset = manifests.read_manifest(baseline / "results/dataset.parquet", ["reference_cos"])
        return float(np.median(dataset["reference_cos"]))
    return value


def test_finished_jobs_leave_no_resumable_state(baseline):
    assert not list((baseline / "results").glob("**/checkpoint-*.pt"))
    assert not (baseline / "results/partial").exists()


@pytest.mark.parametrize("key", list(CHANGES))
def test_rerun_after_a_change_equals_a_fresh_run(key, baseline, tiny_resources, tmp_path):
    config = micro_config(**{key: new_value(key, baseline)})
    rerun = copy_workdir(baseline, tmp_path / "rerun")
    run_snakemake(rerun, config, TARGET)
    fresh = fresh_workdir(tiny_resources, tmp_path / "fresh")
    run_snakemake(fresh, config, TARGET)

    assert differing(rerun, fresh, COMPARED) == []
    downstream = COMPARED if CHANGES[key][1] else COMPARED[1:]
    assert differing(baseline, rerun, COMPARED) == downstream
    for log in ["pack", "train"]:  # nothing was resumed from the baseline's state
        text = (rerun / f"results/logs/{log}.log").read_text()
        assert text.count("resumed from") == 0, text[-2000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_generation_shard_keeps_its_finished_identities(baseline, tmp_path, sig):
    config = micro_config(**{"generation.beta": 0.3})
    target = "results/generated/shard-00000.parquet"
    straight = copy_workdir(baseline, tmp_path / "straight")
    run_snakemake(straight, config, target)

    workdir = copy_workdir(baseline, tmp_path / "killed")
    kill_when(
        workdir, config, target, "results/partial/generated/shard-00000/*/0000000.parquet", sig
    )
    if sig == signal.SIGKILL:  # snakemake died with the job, without releasing its lock
        run_snakemake(workdir, config, "--unlock")
    run_snakemake(workdir, config, target, "--rerun-incomplete")

    log = (workdir / "results/logs/generated/shard-00000.log").read_text()
    kept, generated = map(
        int, re.findall(r"kept (\d+) identities already generated, generating (\d+)", log)[-1]
    )
    print(f"{sig!r}: the re-run kept {kept} identities and generated {generated}")
    assert kept >= 1 and kept + generated == 4
    assert parquet_content(workdir / target) == parquet_content(straight / target)  # images too
    assert not (workdir / "results/partial").exists()


def test_two_fresh_runs_are_identical(baseline, tiny_resources, tmp_path):
    """Bit for bit on the CPU: manifests (but their wall-clock columns), weights, images, the
    exported model and the cards - the shared micro run against a second one from nothing."""
    second = fresh_workdir(tiny_resources, tmp_path / "second")
    run_snakemake(second, micro_config())

    def outputs(workdir: Path) -> list[str]:
        return sorted(
            str(p.relative_to(workdir))
            for p in (workdir / "results").rglob("*")
            if p.is_file()
            and p.suffix in (".parquet", ".safetensors", ".png", ".bin", ".onnx", ".md")
            and "plots" not in p.parts
        )

    assert {
        "results/gallery/shard-00000.parquet",
        "results/generated/shard-00001.parquet",
        "results/aligned/shard-00001.parquet",
        "results/train/model.safetensors",
        "results/eval/holdout.bin",
        "results/stats/judge_images.parquet",
        "results/DATASET_CARD.md",
        "results/model/model.onnx",
        "results/model/MODEL_CARD.md",
    } <= set(outputs(baseline))
    assert outputs(baseline) == outputs(second)
    assert differing(baseline, second, outputs(baseline)) == []


def _change_one_float(folder: Path) -> None:
    """One weight of the tiny Arc2Face UNet changed in place; the file still loads."""
    from safetensors.torch import load_file, save_file

    path = folder / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(path))
    name = sorted(tensors)[0]
    tensors[name].view(-1)[0] += 0.5
    save_file(tensors, str(path))


def test_nothing_changed_or_only_times_plans_nothing(baseline, tmp_path):
    workdir = copy_workdir(baseline, tmp_path / "same")
    assert planned_jobs(run_snakemake(workdir, micro_config(), TARGET, "-n")) == {}
    for path in (workdir / "resources/tiny/arc2face/arc2face").iterdir():
        path.touch()  # same bytes, new times: content decides
    (workdir / "resources/tiny/arc2face/arc2face").touch()
    assert planned_jobs(run_snakemake(workdir, micro_config(), TARGET, "-n")) == {}


def test_weights_changed_in_place_rerun_what_used_them(baseline, tiny_resources, tmp_path):
    from hyperface.storage.lineage import fingerprint

    rerun = copy_workdir(baseline, tmp_path / "rerun")
    _change_one_float(rerun / "resources/tiny/arc2face/arc2face")
    jobs = planned_jobs(run_snakemake(rerun, micro_config(), TARGET, "-n"))
    assert jobs["generate_shard"] == 2 and "pack" not in jobs and "gallery_shard" not in jobs
    run_snakemake(rerun, micro_config(), TARGET)
    fresh = fresh_workdir(tiny_resources, tmp_path / "fresh")
    _change_one_float(fresh / "resources/tiny/arc2face/arc2face")
    run_snakemake(fresh, micro_config(), TARGET)

    assert differing(rerun, fresh, COMPARED) == []
    assert differing(baseline, rerun, COMPARED) == COMPARED[1:]  # not the references
    inputs = manifests.read_meta(rerun / "results/generated/shard-00000.parquet")["inputs"]
    recorded = [w["lineage"] for w in inputs["weights"] if w["path"].endswith("arc2face/arc2face")]
    assert recorded == [fingerprint(rerun / "resources/tiny/arc2face/arc2face")]  # truthful


def test_a_deleted_product_is_planned_again(baseline, tmp_path):
    workdir = copy_workdir(baseline, tmp_path / "deleted")
    for product in ("dataset.parquet", "references.parquet", "gallery.parquet"):
        (workdir / "results" / product).unlink()
    jobs = planned_jobs(run_snakemake(workdir, micro_config(), "-n"))  # the default targets
    assert {"dataset", "pack", "gallery"} <= set(jobs), jobs


def test_a_truncated_shard_is_named_by_every_job_that_reads_it(baseline, tmp_path):
    workdir = copy_workdir(baseline, tmp_path / "truncated")
    shard = workdir / "results/aligned/shard-00000.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    stats = "results/stats/identities.parquet"
    proc = run_snakemake(workdir, micro_config(), TARGET, stats, "--keep-going", check=False)
    assert proc.returncode != 0
    failed = re.findall(r"Error in rule (\w+):", proc.stdout + proc.stderr)
    assert {"dataset", "stats"} <= set(failed), failed
    for log in ["dataset", "stats"]:
        text = (workdir / f"results/logs/{log}.log").read_text()
        assert "results/aligned/shard-00000.parquet: cannot be read as Parquet" in text, text[
            -2000:
        ]
        assert "delete it and run snakemake again" in text
