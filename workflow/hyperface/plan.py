"""What a config will cost before it runs: jobs, GPU-hours, wall time, disk and files per stage.

Every figure comes from one table, ``throughputs.yaml`` beside this module: seconds per unit of
work of each heavy rule on a GPU and on a CPU, each marked measured or estimated with its source.
The workflow's SLURM runtimes are this module's job estimates with headroom, so the plan a user
reads and the time limits the cluster enforces come from the same numbers.

    python -m hyperface.plan --configfile config/paper.yaml [--gpus 8] [--partitions FILE]
    python -m hyperface.plan --calibrate results --column cpu --configfile config/config.yaml
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from hyperface.settings import Settings

RATES = Path(__file__).with_name("throughputs.yaml")
# a job asks SLURM for its estimate times this (estimates are rough; measured figures less so)
HEADROOM = {True: 1.5, False: 2.0}
MINIMUM_MINUTES = 10
# the embedding width each embedder backend writes (the packing search works in it)
EMBEDDING_DIM = {"insightface": 512, "facenet": 512, "sface": 128}
BENCHMARK_IMAGES = 12000  # LFW, CFP-FP, AgeDB-30, CALFW, CPLFW: 6,000 pairs each
EXPECTED_DRAWS = 1.2  # MobileStyleGAN draws per kept image (rejected variants are redrawn)


@dataclass(frozen=True)
class Stage:
    """One heavy rule under a config: how many jobs, how much work each, on what."""

    rule: str
    jobs: int
    units: float  # units of work in one job (throughputs.yaml names the unit)
    gpus: int  # GPUs one job holds (0: a CPU job)
    resumable: bool  # a retry continues where the last attempt stopped
    setting: str  # the setting to change when one job is too long
    disk_bytes: float = 0.0  # what the stage's outputs take, all jobs together
    files: int = 0
    rates_key: str = ""  # the throughputs.yaml entry, when not the rule's own


def load_rates(path: str | Path = RATES) -> dict:
    return yaml.safe_load(Path(path).read_text())


def pack_flops(s: Settings) -> float:
    """Floating-point operations of one packing iteration: the blocked similarity scans (2 n m
    d each) that dominate it, as the solver runs them for this objective and regulariser."""
    p, g = s.packing, s.gallery.size
    d = EMBEDDING_DIM.get(s.embedder.backend, 512)
    n = p.n_identities
    if p.objective == "neighbour_list":  # full scans only when the lists are refreshed
        scans = (2.0 * n * n * d + (2.0 * n * g * d if p.alpha else 0.0)) / p.refresh_every
        return scans + 8.0 * n * p.neighbours * d
    active = p.batch_size or n  # Algorithm 2 scans its mini-batch
    passes = 2 if p.objective in ("softmin", "energy") else 1  # value, then the gradient product
    return passes * 2.0 * active * n * d + (2.0 * active * g * d if p.alpha else 0.0)


def _bytes(s: Settings, rates: dict, which: str, side: int, images: int) -> float:
    encoding = getattr(s.images, which)
    return images * side * side * rates["bytes_per_pixel"][encoding.format]["value"]


def stages(s: Settings, rates: dict, evaluations: int = 5) -> list[Stage]:
    """The heavy rules of config ``s``; ``evaluations``: (model, benchmark) pairs evaluated."""
    gen, n = s.generation, s.packing.n_identities
    images = n * gen.images_per_identity
    gallery_jobs = math.ceil(s.gallery.size / s.gallery.shard_size)
    id_jobs = math.ceil(n / gen.identities_per_shard)
    per_shard = min(n, gen.identities_per_shard) * gen.images_per_identity
    bfloat16_lists = s.packing.objective == "neighbour_list" and s.packing.search == "bfloat16"
    out = [
        Stage("gallery_shard", gallery_jobs, min(s.gallery.size, s.gallery.shard_size), 1, False,
              "gallery.shard_size", _bytes(s, rates, "gallery", 112, s.gallery.size),
              gallery_jobs),
        Stage("pack", 1, s.packing.iterations * pack_flops(s) / 1e9, 1, True,
              "packing.iterations (or packing.objective: neighbour_list for n > 50k)", 0.0, 2,
              "pack_bfloat16" if bfloat16_lists else "pack"),
        generation_stage(s, rates, id_jobs, per_shard),
        Stage("align_shard", id_jobs, per_shard, 1, True, "generation.identities_per_shard",
              _bytes(s, rates, "aligned", s.alignment.size, images), id_jobs),
        Stage("train", 1, images * s.training.epochs, s.training.gpus, True,
              "training.gpus (or training.epochs)", 0.0, 3),
        Stage("evaluate", evaluations, BENCHMARK_IMAGES, 1, False, "-", 0.0, evaluations),
        Stage("stats", 1, images, 0, False, "-", 0.0, 3),
        # optional stages: no job when off (their rules still get a runtime)
        Stage("leakage", int(bool(s.leakage.reference)), images, 1, False, "-", 0.0, 1),
        Stage("judge", int(bool(s.quality.judge.backend)),
              2 * min(s.quality.judge.sample, n) * gen.images_per_identity, 0, False,
              "quality.judge.sample", 0.0, 3),
        Stage("export_imagefolder", int(s.export.imagefolder), images, 0, False, "-",
              images * _bytes(s, rates, "aligned", s.alignment.size, 1), images),
        Stage("export_rec", int(s.export.rec), images, 0, False, "-", 0.0, 2),
        Stage("variation", int(gen.generator == "mobilestylegan"), s.gallery.size, 0, False, "-"),
    ]  # fmt: skip
    return out


def generation_stage(s: Settings, rates: dict, jobs: int, per_shard: int) -> Stage:
    """Arc2Face's denoising steps on a GPU, or MobileStyleGAN's generator calls on the CPU (the
    search for each identity's face, then its images and their expected redraws)."""
    gen = s.generation
    disk = _bytes(s, rates, "generated", gen.resolution, s.packing.n_identities
                  * gen.images_per_identity) * s.images.keep_generated  # fmt: skip
    files = jobs * s.images.keep_generated
    if gen.generator == "mobilestylegan":
        identities = per_shard // gen.images_per_identity
        calls = identities * gen.realise.calls + per_shard * EXPECTED_DRAWS
        return Stage("generate_shard", jobs, calls, 0, True, "generation.identities_per_shard",
                     disk, files, "generate_mobilestylegan")  # fmt: skip
    steps = per_shard * gen.steps * (gen.resolution / 512) ** 2
    return Stage("generate_shard", jobs, steps, 1, True, "generation.identities_per_shard", disk,
                 files)  # fmt: skip


def rate(rates: dict, stage: Stage, column: str) -> dict:
    """The table's entry for a stage on ``column`` (gpu, cpu); CPU jobs always use cpu."""
    entry = rates["stages"][stage.rates_key or stage.rule]
    return entry["cpu"] if stage.gpus == 0 or column not in entry else entry[column]


def job_seconds(stage: Stage, rates: dict, column: str) -> float:
    """One job's estimate: its work at the table's rate, spread over its GPUs."""
    return stage.units * rate(rates, stage, column)["seconds"] / max(1, stage.gpus)


def runtime_minutes(stage: Stage, rates: dict, column: str = "gpu") -> int:
    """The time limit a job asks of SLURM: its estimate with headroom, at least 10 minutes."""
    headroom = HEADROOM[bool(rate(rates, stage, column)["measured"])]
    return max(MINIMUM_MINUTES, math.ceil(job_seconds(stage, rates, column) * headroom / 60))


def attempt_minutes(stage: Stage, rates: dict, attempt: int) -> int:
    """A retry of a resumable job needs no more than the first attempt (it resumes); any other
    job asks for more time each attempt."""
    base = runtime_minutes(stage, rates)
    return base if stage.resumable else base * attempt


def table(plan: list[Stage], rates: dict, column: str, concurrency: int) -> pd.DataFrame:
    """Per stage: jobs, GPU-hours, wall hours with ``concurrency`` GPUs (or CPU jobs) at once,
    the time limit a job asks, disk and files, and whether the rate is measured."""
    rows = []
    for st in (st for st in plan if st.jobs):
        secs = job_seconds(st, rates, column)
        slots = max(1, concurrency // max(1, st.gpus))  # jobs running side by side
        entry = rate(rates, st, column)
        rows.append(
            {
                "stage": st.rule,
                "jobs": st.jobs,
                "gpu_hours": st.jobs * secs * st.gpus / 3600,
                "wall_hours": math.ceil(st.jobs / slots) * secs / 3600,
                "job_limit_h": runtime_minutes(st, rates, column) / 60,
                "disk_gb": st.disk_bytes / 1e9,
                "files": st.files,
                "rate": "measured" if entry["measured"] else "estimate",
            }
        )
    frame = pd.DataFrame(rows)
    total = {
        "stage": "total",
        "jobs": frame["jobs"].sum(),
        "gpu_hours": frame["gpu_hours"].sum(),
        "wall_hours": frame["wall_hours"].sum(),  # stages one after another (the DAG's spine)
        "job_limit_h": frame["job_limit_h"].max(),
        "disk_gb": frame["disk_gb"].sum(),
        "files": frame["files"].sum(),
        "rate": "",
    }
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def report(plan: list[Stage], rates: dict, column: str, gpus: int, what: str) -> str:
    """The plan as printed: a header line and the table."""
    frame = table(plan, rates, column, gpus)
    head = f"{what}: {gpus} {column.upper()}s at once, rates from {RATES.name}"
    return head + "\n" + frame.to_string(index=False, float_format=lambda v: f"{v:,.1f}")


def evaluations_of(s: Settings) -> int:
    """(model, benchmark) pairs the evaluate rule runs: benchmarks and the holdout, for the
    trained model and each baseline."""
    benchmarks = len(s.evaluation.benchmarks) + bool(s.evaluation.holdout_identities)
    return benchmarks * (1 + len(s.evaluation.models))


def partition_limits(path: str | Path) -> tuple[float, float]:
    """The longest runtime (minutes) any partition of a plugin partition file allows to a GPU job
    and to a CPU job (inf where none states a limit)."""
    parts = (yaml.safe_load(Path(path).read_text()) or {}).get("partitions", {}) or {}
    gpu = [p for p in parts.values() if (p or {}).get("max_gpu", 1) != 0]

    def longest(group):  # noqa: E306 - a helper of three lines
        return max((float((p or {}).get("max_runtime", math.inf)) for p in group), default=0.0)

    return longest(gpu), longest(parts.values())  # fmt: skip


def too_long(plan: list[Stage], rates: dict, limits: tuple[float, float]) -> list[str]:
    """One line per stage whose job would ask more time than any partition allows."""
    problems = []
    for st in (st for st in plan if st.jobs):
        limit = limits[0] if st.gpus else limits[1]
        minutes = runtime_minutes(st, rates)
        if minutes > limit:
            estimate = job_seconds(st, rates, "gpu") / 3600
            problems.append(
                f"{st.rule}: a job asks {minutes / 60:.1f} h (its estimate {estimate:.1f} h with "
                f"headroom), longer than the {limit / 60:.0f} h the partitions allow: "
                f"change {st.setting}"
            )
    return problems


def calibrate(workdir: Path, s: Settings, rates: dict, column: str, evaluations: int) -> dict:
    """The table with ``column`` rewritten from a finished run's benchmark files: each stage's
    seconds over all its jobs divided by their units of work."""
    root = workdir / (s.results or "results") / "benchmarks"
    patterns = {"gallery_shard": "gallery/shard-*.tsv", "generate_shard": "generated/shard-*.tsv",
                "align_shard": "aligned/shard-*.tsv", "evaluate": "eval/*/*.tsv"}  # fmt: skip
    today = datetime.date.today().isoformat()
    for st in stages(s, rates, evaluations):
        files = sorted(root.glob(patterns.get(st.rule, f"{st.rule}.tsv")))
        if not files or st.units == 0:
            continue
        seconds = sum(pd.read_csv(f, sep="\t")["s"].iloc[-1] for f in files)
        per_unit = seconds * max(1, st.gpus) / (len(files) * st.units)
        rates["stages"][st.rates_key or st.rule][column] = {
            "seconds": float(f"{per_unit:.3g}"),
            "measured": True,
            "source": f"measured {today}: {len(files)} job(s), {workdir.name}, {_machine(column)}",
        }
    return rates


def _machine(column: str) -> str:
    import platform

    import torch

    if column == "gpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def settings_of(configfiles: list[str], overrides: list[str]) -> Settings:
    """The settings of ``--configfile`` files (later ones overlay earlier ones, as in Snakemake)
    and ``--config key=value`` overrides, with the schema's defaults."""
    from hyperface.settings import schema
    from hyperface.validation import config_problems, refusal

    config: dict = {}
    for path in configfiles:
        _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    for item in overrides:
        key, _, text = item.partition("=")
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(text)
    problems = config_problems(config, schema())
    if problems:
        raise SystemExit(refusal(problems))
    return Settings.from_section(config)  # missing keys take the schema's defaults


def _merge(base: dict, overlay: dict) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hyperface.plan", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--configfile", nargs="+", required=True)
    parser.add_argument("--config", nargs="*", default=[], help="key=value overrides")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs (or CPU jobs) at once")
    parser.add_argument("--column", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--partitions", help="a SLURM plugin partition file: refuse jobs too long")
    parser.add_argument("--calibrate", type=Path, help="a finished workdir: rewrite --column")
    parser.add_argument("--rates", type=Path, default=RATES)
    args = parser.parse_args(argv)
    s = settings_of(args.configfile, args.config)
    rates = load_rates(args.rates)
    evaluations = evaluations_of(s)
    if args.calibrate:
        updated = calibrate(args.calibrate, s, rates, args.column, evaluations)
        args.rates.write_text(_dump(updated))
        print(f"{args.rates}: {args.column} column rewritten from {args.calibrate}")
        return
    plan = stages(s, rates, evaluations)
    print(report(plan, rates, args.column, args.gpus, ", ".join(args.configfile)))
    if args.partitions:
        problems = too_long(plan, rates, partition_limits(args.partitions))
        if problems:
            print("\n".join(["", *problems]), file=sys.stderr)
            raise SystemExit(1)


def _dump(rates: dict) -> str:
    head = RATES.read_text().split("stages:")[0]  # keep the table's explanation
    return head + yaml.safe_dump(rates, sort_keys=False, width=200)


if __name__ == "__main__":
    main()
