"""Drive snakemake on small configs in temp dirs: plans, bad configs, a full run, re-runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hyperface.quality.verdicts import overall
from hyperface.reports import readme
from hyperface.settings import Settings
from hyperface.storage import manifests, recordio
from hyperface.storage.containers import Container

from .conftest import (
    ARC2FACE_TINY,
    REPO,
    copy_workdir,
    demo_config,
    fresh_workdir,
    micro_config,
    planned_jobs,
    run_snakemake,
)

pytestmark = pytest.mark.workflow


def small_config(**overrides) -> dict:
    """The demo config, smaller: the whole DAG in about a minute and a half on 2 cores."""
    base = {
        "gallery.size": 16,
        "gallery.shard_size": 8,
        "gallery.steps": 2,
        "packing.n_identities": 12,
        "packing.iterations": 60,
        "packing.lr_step": 20,
        "packing.checkpoint_every": 20,
        "generation.images_per_identity": 3,
        "generation.identities_per_shard": 4,
        "generation.steps": 2,
        "evaluation.holdout_identities": 4,
        "training.epochs": 1,
        "training.milestones": [],
    }
    return demo_config(**{**ARC2FACE_TINY, **base, **overrides})


def test_dry_run_plans_the_whole_dag(tmp_path):
    jobs = planned_jobs(run_snakemake(tmp_path, demo_config(), "-n"))
    assert jobs == {
        "gallery_shard": 2,
        "gallery": 1,
        "pack": 1,
        "variation": 1,  # the MobileStyleGAN identities' yaw direction and threshold
        "generate_shard": 4,
        "align_shard": 4,
        "dataset": 1,
        "holdout_bin": 1,
        "train": 1,
        "evaluate": 1,
        "summary": 1,
        "stats": 1,
        "leakage": 1,
        "export_imagefolder": 1,
        "export_rec": 1,
        "plots": 1,
        "dataset_card": 1,
        "export_model": 1,
        "all": 1,
        "packaged_weights": 4,
        "judge": 1,
    }  # the real models' files, out of their packages


@pytest.mark.parametrize("profile", [None, "slurm"])
def test_paper_scale_dry_run_without_weights(tmp_path, profile):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["packing"]["n_identities"] = config["gallery"]["size"] = 50_000
    extra = ["--profile", str(REPO / "profiles" / profile)] if profile else []
    t0 = time.perf_counter()
    proc = run_snakemake(tmp_path, config, "-n", *extra)
    seconds = time.perf_counter() - t0
    jobs = planned_jobs(proc)
    total = sum(jobs.values())
    print(
        f"50,000 identities x {config['generation']['images_per_identity']} images, profile "
        f"{profile}: "
        f"{total} jobs, planned in {seconds:.1f} s"
    )
    assert (
        jobs["generate_shard"]
        == jobs["align_shard"]
        == 50_000 // config["generation"]["identities_per_shard"]
    )
    assert (
        set(jobs) >= {"gallery_shard", "pack", "train", "evaluate", "summary"}
        and "tiny_models" not in jobs
    )
    assert jobs["evaluate"] == 5
    assert total <= 400
    # the planner counts the jobs the workflow plans
    from hyperface import plan

    for stage in plan.stages(Settings.from_section(config), plan.load_rates()):
        assert jobs.get(stage.rule, 0) == stage.jobs, stage.rule
    # the missing real weights are listed with their settings, not fatal to the plan
    assert "embedder.weights: resources/weights/arc2face/arcface.onnx is missing" in (
        proc.stdout + proc.stderr
    )


def runtimes(proc) -> dict[str, set[int]]:
    """Rule -> the runtimes (minutes) its jobs ask for, from a dry-run's job listing."""
    found: dict[str, set[int]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        match = re.match(r"(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
        match = re.search(r"\bruntime=(\d+)", line)
        if match and rule:
            found.setdefault(rule, set()).add(int(match.group(1)))
    return found


def test_large_overlay_plans_300k_identities_within_the_partitions_time_limit(tmp_path):
    """Through the SLURM profile: a few hundred jobs, none asking more than the 48 h of
    partitions.yaml, each runtime the planner's (hyperface.plan) for that rule."""
    from hyperface import plan

    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert config["packing"]["objective"] == "hard_min"  # the paper's own objective
    overlay = yaml.safe_load((REPO / "config" / "large.yaml").read_text())
    for section, values in overlay.items():  # sections are merged, top-level values replaced
        if isinstance(values, dict):
            config[section].update(values)
        else:
            config[section] = values
    proc = run_snakemake(tmp_path, config, "-n", "--profile", str(REPO / "profiles" / "slurm"))
    jobs, asked = planned_jobs(proc), runtimes(proc)
    print(f"300,000 identities: {sum(jobs.values())} jobs; minutes asked: {asked}")
    assert config["packing"]["objective"] == "neighbour_list"
    assert jobs["generate_shard"] == 300 and sum(jobs.values()) < 700
    limit = plan.partition_limits(REPO / "profiles" / "slurm" / "partitions.yaml")[0]
    assert max(max(minutes) for minutes in asked.values()) <= limit == 48 * 60
    settings, rates = Settings.from_section(config), plan.load_rates()
    expected = {st.rule: plan.runtime_minutes(st, rates) for st in plan.stages(settings, rates)}
    for rule in ("gallery_shard", "pack", "generate_shard", "align_shard", "train", "evaluate"):
        assert asked[rule] == {expected[rule]}, rule


BAD_CONFIGS = [
    ({"packing.n_identities": 0}, "n_identities"),
    ({"gallery.size": -5}, "size"),
    ({"generation.images_per_identity": "many"}, "images_per_identity"),
    ({"generation.beta": -0.1}, "beta"),
    ({"packing.optimizer": "sgd"}, "optimizer"),
    ({"gallery.generator": "biggan"}, "generator"),
    ({"embedder.backend": "dlib"}, "backend"),
    ({"packing.objective": "max_sum"}, "objective"),
    ({"training.epochs": 2.5}, "epochs"),
    ({"packing.n_identities": 1000}, "packing.n_identities"),
    ({"generation.bata": 0.1}, "bata"),
]


@pytest.mark.parametrize("overrides, key", BAD_CONFIGS, ids=[k for _, k in BAD_CONFIGS])
def test_bad_config_fails_before_any_job(tmp_path, overrides, key):
    proc = run_snakemake(tmp_path, demo_config(**overrides), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert key in out, out[-3000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_a_config_with_several_problems_is_refused_in_one_short_message(tmp_path):
    config = demo_config(**{"training.epochs": 3.0, "packing.lr_steps": 5, "generation.bata": 0.1})
    proc = run_snakemake(tmp_path, config, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for line in [
        "invalid config (3 problems):",
        "training.epochs: 3.0 is not an integer",
        "packing.lr_steps: unknown key; did you mean packing.lr_step?",
        "generation.bata: unknown key; did you mean generation.beta?",
    ]:
        assert line in out, out
    assert len(out.splitlines()) < 60 and "$schema" not in out
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_missing_inputs_are_refused_before_any_job(tmp_path):
    config = demo_config(
        **{
            **ARC2FACE_TINY,  # MobileStyleGAN's identities need a MobileStyleGAN gallery
            "gallery.generator": "ldm",
            "gallery.weights": "resources/weights/no-ldm",
            "evaluation.benchmarks": {"lfw": "resources/benchmarks/lfw.bin"},
        }
    )
    proc = run_snakemake(tmp_path, config, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "2 inputs that no rule makes are missing or unreadable; nothing was started" in out
    assert "gallery.weights: resources/weights/no-ldm is missing" in out
    assert "evaluation.benchmarks.lfw: resources/benchmarks/lfw.bin is missing" in out
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources/tiny").exists()
    # a dry-run lists the same problems and still shows the whole plan
    dry = run_snakemake(tmp_path, config, "-n")
    assert "a run stops before its first job" in dry.stdout + dry.stderr
    assert planned_jobs(dry)["generate_shard"] == 4


@pytest.fixture(scope="module")
def finished(demo_run):
    """The complete demo run (shared with the reproducibility test); tests that change files work
    on copies of it."""
    return demo_run


DEMO = demo_config()
N_ID, N_IMG = DEMO["packing"]["n_identities"], DEMO["generation"]["images_per_identity"]
N_TRAIN = N_ID - DEMO["evaluation"]["holdout_identities"]


def test_full_run_ends_with_the_summary(finished):
    summary = pd.read_parquet(finished / "results/eval/summary.parquet")
    assert summary[["model", "benchmark"]].values.tolist() == [["trained", "holdout"]]
    assert 0.0 <= summary["accuracy"].iloc[0] <= 1.0 and 0.0 <= summary["val"].iloc[0] <= 1.0
    assert "| trained | holdout |" in (finished / "results/eval/summary.md").read_text()
    refs = manifests.read_embeddings(finished / "results/references.parquet")
    assert refs.shape == (N_ID, 128)  # the demo packs SFace's space
    np.testing.assert_allclose(np.linalg.norm(refs, axis=1), 1.0, atol=1e-5)
    dataset = manifests.read_manifest(finished / "results/dataset.parquet")
    assert sorted(dataset["identity"].unique()) == list(range(N_TRAIN))  # the last ones held out
    assert 0.9 * N_TRAIN * N_IMG <= len(dataset) <= N_TRAIN * N_IMG  # faces MTCNN found
    meta = manifests.read_meta(finished / "results/gallery.parquet")
    assert meta["backends"] == {"gallery": "mobilestylegan", "embedder": "sface"}
    for log in ["pack", "train", "generated/shard-00000", "aligned/shard-00003"]:
        assert (finished / f"results/logs/{log}.log").stat().st_size > 0


def test_every_output_names_its_provenance(finished):
    from hyperface.storage.lineage import provenance

    tree = "\n".join(provenance("results/eval/summary.parquet", workdir=finished))
    print(tree)
    for stage in [
        "[summary]",
        "[evaluate]",
        "[train]",
        "[dataset]",
        "[align_shard]",
        "[generate_shard]",
        "[pack]",
        "[gallery]",
        "[gallery_shard]",
    ]:
        assert stage in tree
    for model in [
        "packaged/sface (fingerprint",
        "packaged/mobilestylegan (fingerprint",
        "variation.json (fingerprint",
        "holdout.bin (fingerprint",
    ]:
        assert model in tree


def test_the_model_is_exported_with_its_card_and_evaluates_as_a_baseline(finished, tmp_path):
    card = (finished / "results/model/MODEL_CARD.md").read_text()
    print(card)
    assert "largest difference" in card and "| trained | holdout |" in card and "[train]" in card
    assert "| role | model |" in card  # the licence table
    # the exported ONNX, evaluated as an external baseline on the same benchmark, scores exactly
    # what the weights scored
    work = copy_workdir(finished, tmp_path / "baseline")
    config = demo_config(**{"evaluation.models": {"exported": "results/model/model.onnx"}})
    run_snakemake(work, config, "results/eval/summary.parquet")
    summary = pd.read_parquet(work / "results/eval/summary.parquet").set_index("model")
    assert list(summary.index) == ["trained", "exported"]
    for column in ["accuracy", "std", "val", "far"]:
        assert summary.loc["exported", column] == pytest.approx(
            summary.loc["trained", column], abs=1e-9
        )
    folds = [
        pd.read_parquet(work / f"results/eval/{m}/holdout.parquet") for m in ("trained", "exported")
    ]
    np.testing.assert_allclose(folds[0]["threshold"], folds[1]["threshold"])


def test_the_dataset_comes_with_its_card(finished):
    card = (finished / "results/DATASET_CARD.md").read_text()
    print(card)
    dataset = manifests.read_manifest(finished / "results/dataset.parquet")
    assert f"**{N_TRAIN:,} identities, {len(dataset):,} images**" in card
    assert manifests.read_meta(finished / "results/dataset.parquet")["lineage"] in card
    assert "| kept |" in card and "| holdout |" in card
    assert "The 16 synthetic images closest to a reference face have cosine" in card
    assert "Tiny random model (CPU demo)" not in card and "| MTCNN |" in card
    assert "| MobileStyleGAN" in card and "| SFace" in card and "| dlib" in card
    assert "## Independent judge" in card and "| gallery faces found by YuNet |" in card
    assert "What packing changed, for the judge" in card and "| redrawn |" in card


def test_the_demo_is_a_real_face_dataset_and_the_judge_says_so(finished):
    """At least 95 % of the demo's gallery faces are found by MTCNN and by the independent YuNet;
    the judge looked at every identity (fewer than its sample) and every aligned crop: at least
    90 % are faces, dlib calls at least 80 % of same-identity pairs the same person and at most
    10 % of pairs of different identities."""
    gallery = manifests.read_manifest(finished / "results/stats/judge_gallery.parquet")
    assert len(gallery) == DEMO["gallery"]["size"]
    assert (gallery["face_prob"] >= 0.9).mean() >= 0.95 and (
        gallery["face_score"] > 0
    ).mean() >= 0.95
    identities = manifests.read_manifest(finished / "results/stats/judge_identities.parquet")
    assert (
        list(identities["identity"]) == list(range(N_ID)) and (identities["images"] == N_IMG).all()
    )
    images = manifests.read_manifest(finished / "results/stats/judge_images.parquet")
    assert len(images) == identities["images"].sum()
    verdict = manifests.read_meta(finished / "results/stats/judge_identities.parquet")["judge"]
    figures = overall(images, identities)
    print(f"faces {figures['detection_rate']:.3f}, genuine {figures['genuine_match']:.3f}, "
          f"impostors {verdict['impostors_accepted']:.3f}")  # fmt: skip
    assert verdict["backend"] == "dlib"
    assert figures["detection_rate"] >= 0.9 and figures["genuine_match"] >= 0.8
    assert verdict["impostors_accepted"] <= 0.1
    spread = manifests.read_manifest(finished / "results/stats/judge_spread.parquet")
    assert list(spread["set"]) == ["random", "starts", "realised"]


def test_statistics_and_filter_counts_add_up(finished):
    counts = pd.read_parquet(finished / "results/stats/filter_counts.parquet").set_index("reason")[
        "images"
    ]
    assert counts["generated"] + counts["given_up"] == N_ID * N_IMG
    assert counts["redrawn"] >= 0
    # kept + removed per reason add up to the images generated
    assert counts.drop(["redrawn", "given_up", "generated"]).sum() == counts["generated"]
    assert counts["kept"] == len(manifests.read_manifest(finished / "results/dataset.parquet"))
    identities = pd.read_parquet(finished / "results/stats/identities.parquet")
    assert identities["identity"].tolist() == list(range(N_ID))
    assert identities["images"].sum() == counts["generated"]
    assert identities["intra_cos_mean"].between(-1, 1).all()
    similarity = pd.read_parquet(finished / "results/stats/similarity.parquet")
    per_kind = similarity.groupby("kind")["count"].sum()
    images_per = identities["images"].to_numpy()
    assert per_kind["intra_images"] == (images_per * (images_per - 1) // 2).sum()
    assert per_kind["inter_references"] == N_ID * (N_ID - 1) // 2
    images = pd.read_parquet(finished / "results/stats/images.parquet")
    assert {"yaw", "pitch", "roll"} <= set(images.columns) and len(images) == counts["generated"]
    pairs = pd.read_parquet(finished / "results/leakage/pairs.parquet")
    assert len(pairs) == DEMO["leakage"]["top_k"] and pairs["cosine"].is_monotonic_decreasing
    assert all((finished / "results" / p).stat().st_size > 0 for p in pairs["picture"])
    folders = sorted(p.name for p in (finished / "results/imagefolder").iterdir() if p.is_dir())
    assert folders == [f"{i:07d}" for i in range(N_TRAIN)]


def test_images_live_in_one_container_per_shard(finished, tmp_path):
    """No file per image: a shard is one Parquet file, which Hugging Face datasets decodes as
    images equal to ours; the ImageFolder export holds the stored bytes."""
    import datasets

    for stage in ("gallery", "generated", "aligned"):
        files = sorted(p.name for p in (finished / "results" / stage).iterdir())
        assert files == [f"shard-{i:05d}.parquet" for i in range(len(files))], stage
    shard = finished / "results/aligned/shard-00000.parquet"
    hf = datasets.Dataset.from_parquet(str(shard), cache_dir=str(tmp_path / "hf"))
    assert isinstance(hf.features["image"], datasets.Image)
    assert len(hf) == len(manifests.read_manifest(shard, ["identity"]))
    ours = Container(shard)
    for row in (0, 7, len(hf) - 1):
        np.testing.assert_array_equal(
            np.asarray(hf[row]["image"].convert("RGB")), ours.images([row])[0]
        )
    data, name = ours.cells([0])[0]
    assert (finished / "results/imagefolder" / name).read_bytes() == data
    # the .rec export, read as arcface_torch reads it: record 0 says where the images end
    frame = manifests.read_manifest(
        finished / "results/dataset.parquet", ["label", "container", "row"]
    )
    frame = frame.sort_values("label", kind="stable").reset_index(drop=True)
    index = recordio.read_index(finished / "results/rec/train.idx")
    with open(finished / "results/rec/train.rec", "rb") as f:
        head, _, _ = recordio.unpack(recordio.read_record(f, index[0]))
        assert int(head[0]) == len(frame) + 1 and int(head[1]) == len(frame) + 1 + N_TRAIN
        for key in (1, len(frame)):
            label, _, data = recordio.unpack(recordio.read_record(f, index[key]))
            row = frame.iloc[key - 1]
            assert label == row["label"]
            assert (
                data == Container(finished / "results" / row["container"]).encoded([row["row"]])[0]
            )
    assert (finished / "results/rec/property").read_text() == f"{N_TRAIN},112,112\n"


def test_generated_images_can_be_dropped_once_aligned(tiny_resources, tmp_path):
    """images.keep_generated: false - the generated shards go once aligned, and a finished run
    stays finished (missing temporary files never re-plan generation)."""
    workdir = fresh_workdir(tiny_resources, tmp_path / "w")
    config = micro_config(**{"images.keep_generated": False})
    run_snakemake(workdir, config, "results/dataset.parquet")
    assert not list((workdir / "results/generated").glob("*.parquet"))
    assert len(list((workdir / "results/aligned").glob("*.parquet"))) == 2
    assert planned_jobs(run_snakemake(workdir, config, "-n", "results/dataset.parquet")) == {}
    plan = run_snakemake(workdir, config, "-n", "results/plots/samples_aligned.png")
    assert "generate_shard" not in planned_jobs(plan) and "samples_raw" not in plan.stdout


def test_nothing_changed_plans_nothing(finished):
    proc = run_snakemake(finished, demo_config(), "-n")
    assert planned_jobs(proc) == {}
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_a_variant_setting_reruns_generation_and_what_follows(finished):
    """generation.variants.yaw re-plans generation and what follows, not the gallery, packing or
    the variation rule; beta, which only Arc2Face reads, re-plans nothing under MobileStyleGAN."""
    beta = run_snakemake(finished, demo_config(**{"generation.beta": 0.05}), "-n")
    assert planned_jobs(beta) == {}
    jobs = planned_jobs(run_snakemake(finished, demo_config(**{"generation.variants.yaw": 20.0}),
                                      "-n"))  # fmt: skip
    assert set(jobs) == {
        "generate_shard",
        "align_shard",
        "dataset",
        "holdout_bin",
        "train",
        "evaluate",
        "summary",
        "stats",
        "leakage",
        "export_imagefolder",
        "export_rec",
        "plots",
        "dataset_card",
        "export_model",
        "judge",
        "all",
    }
    assert jobs["generate_shard"] == 4


def test_changing_the_judge_reruns_its_verdict_as_a_fresh_one(finished, tmp_path, monkeypatch):
    """A smaller judge sample re-runs the judge and what shows it, nothing upstream, and the new
    verdict equals the judge stage run afresh on the same shards."""
    from hyperface.settings import JudgeSettings
    from hyperface.stages.judge import judge

    from .compare import parquet_content

    config = demo_config(**{"quality.judge.sample": 10})
    work = copy_workdir(finished, tmp_path / "judge")
    jobs = planned_jobs(run_snakemake(work, config, "-n"))
    assert set(jobs) == {"judge", "plots", "dataset_card", "export_model", "all"}
    run_snakemake(work, config)
    monkeypatch.chdir(work)
    parts = ("images", "identities", "gallery", "spread")
    fresh = {part: tmp_path / f"{part}.parquet" for part in parts}
    judge(
        sorted(
            f"results/aligned/{p.name}" for p in Path("results/aligned").glob("shard-*.parquet")
        ),
        sorted(
            f"results/gallery/{p.name}" for p in Path("results/gallery").glob("shard-*.parquet")
        ),
        "results/references.parquet",
        "results",
        fresh,
        settings=JudgeSettings.from_section(config["quality"]["judge"]),
    )
    for part, path in fresh.items():
        assert parquet_content(work / f"results/stats/judge_{part}.parquet") == parquet_content(
            path
        ), part
    # gallery faces checked: the 10 evenly spaced, and those the judged identities started from
    assert len(manifests.read_manifest(fresh["gallery"])) >= 10
    assert len(manifests.read_manifest(fresh["identities"])) == 10


def test_changing_alpha_reruns_packing_not_the_gallery(finished):
    jobs = planned_jobs(run_snakemake(finished, demo_config(**{"packing.alpha": 0.1}), "-n"))
    assert "pack" in jobs and "generate_shard" in jobs and "train" in jobs
    assert not {"gallery_shard", "gallery", "tiny_models"} & set(jobs)


def test_identity_images_do_not_depend_on_sharding(finished, tmp_path):
    workdir = copy_workdir(finished, tmp_path / "resharded")
    # identities 7..13 lie in shards 0 and 1 with 10 per shard, all in shard 1 with 7 per shard
    config = demo_config(**{"generation.identities_per_shard": 7})
    run_snakemake(workdir, config, "results/generated/shard-00001.parquet")
    before = manifests.read_manifest(finished / "results/generated/shard-00000.parquet")
    before = pd.concat(
        [before, manifests.read_manifest(finished / "results/generated/shard-00001.parquet")]
    )
    after = manifests.read_manifest(workdir / "results/generated/shard-00001.parquet")
    assert sorted(after["identity"].unique()) == list(range(7, 14))
    for _, row in after.iterrows():  # identities 7-9 moved from shard 0 to shard 1
        old = before[
            (before["identity"] == row["identity"]) & (before["sample"] == row["sample"])
        ].iloc[0]
        assert old["image"] == row["image"]  # the encoded bytes and the name
        np.testing.assert_array_equal(old["condition"], row["condition"])


def test_report_holds_every_plot_and_table(finished, tmp_path):
    import zipfile

    run_snakemake(finished, demo_config(), "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as zf:
        sizes = {Path(info.filename).name: info.file_size for info in zf.infolist()}
    expected = [
        "packing_trace.png",
        "nn_histogram.png",
        "samples_raw.png",
        "samples_aligned.png",
        "similarity.png",
        "filter_counts.png",
        "pose.png",
        "training.png",
        "benchmarks.html",
        "report.html",
    ]
    for name in expected:
        assert sizes.get(name, 0) > 0, f"{name} missing or empty in report.zip"


def test_summary_lists_every_output(finished):
    proc = run_snakemake(finished, demo_config(), "--summary")
    out = proc.stdout
    for path in [
        "results/references.parquet",
        "results/dataset.parquet",
        "results/eval/summary.md",
        "results/plots/packing_trace.png",
    ]:
        assert path in out


def test_the_readme_shows_what_a_fresh_demo_and_the_dry_runs_print(finished):
    """Every table and job count of README.md between its figure markers, regenerated from this
    fresh demo and from dry-runs (python -m hyperface.reports.readme rewrites them)."""
    from hyperface.reports import readme

    made = readme.figures(readme.Run(finished, finished / "config.yaml"))
    assert set(made) == set(readme.FIGURES)
    assert readme.differences((REPO / "README.md").read_text(), made) == [], made


# Another CPU's floating-point kernels, as near as this one can play them: torch's own kernels,
# oneDNN and MKL held to AVX2 (no AVX-512, no AMX), OpenBLAS's Haswell kernels and OpenCV's
# dispatch without AVX-512 or AVX-VNNI (SFace, YuNet, the alignment warp)
OTHER_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX,AVX_VNNI",
}


def test_the_readme_figures_hold_under_another_cpus_kernels(finished, tmp_path):
    """The float-sensitive stages of the demo (packing, the variation threshold, alignment and
    everything after it: training, evaluation, the judge) re-run under other kernels, and the
    README's figures from them within their stated bounds; the generators' images (OpenVINO,
    byte-equal under these kernels) are kept."""
    from safetensors.numpy import load_file

    workdir = copy_workdir(finished, tmp_path / "kernels")
    env = {**os.environ, **OTHER_KERNELS}
    run_snakemake(workdir, DEMO, "--forcerun", "align_shard", "train", "judge", env=env)
    targets = ["results/references.parquet", "results/variation.json"]
    run_snakemake(workdir, DEMO, *targets, "--forcerun", "pack", "variation", env=env)
    # the other kernels moved the numbers (else this test would show nothing)
    refs = [
        manifests.read_embeddings(d / "results/references.parquet") for d in (finished, workdir)
    ]
    assert not np.array_equal(*refs)
    weights = [load_file(d / "results/train/model.safetensors") for d in (finished, workdir)]
    assert any(not np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    cmd = [sys.executable, "-m", "hyperface.reports.readme", "--check", "--workdir", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--only", *readme.BOUNDS]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_the_seed_bench_retrains_the_demo_model_as_the_train_rule_does(finished):
    """hyperface.bench.seeds (what bounds the training figures) scores the demo's seed as the
    pipeline scored the demo's own model."""
    from hyperface.bench import seeds
    from hyperface.quality import real_photos
    from hyperface.settings import TrainingSettings

    photos = real_photos.aligned_photos(real_photos.installed_photos())
    training = TrainingSettings.from_section(DEMO["training"])
    demo = pd.read_parquet(finished / "results/eval/summary.parquet").iloc[0]
    again = seeds.scores(finished, training, DEMO["seed"], photos)
    assert again[0] == pytest.approx(100 * demo["accuracy"])
    assert again[1] == pytest.approx(100 * demo["std"])
