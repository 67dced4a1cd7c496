"""The README's figures, from a run: every table and job count it shows, regenerated.

A figure in README.md sits between ``<!-- name -->`` and ``<!-- /name -->`` (invisible once
rendered); :data:`FIGURES` says how each is made - from a finished demo's outputs or from a
dry-run. ``python -m hyperface.reports.readme`` rewrites them after ``make demo``; ``--check``
lists the ones that differ (and a workflow test runs that check on a fresh demo), so a reader
can tell drift from breakage. Counts must be equal; what floating-point kernels move (accuracies,
thresholds, distances, rates from embeddings) may differ within the figure's :data:`BOUNDS`,
measured across CPU kernels and stated under the figure, so the check holds on any x86 CPU.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hyperface.reports.bounds import EXACT, Bound, departures

REPO = Path(__file__).resolve().parents[3]
BLOCK = re.compile(r"<!-- (?P<name>[\w-]+) -->(?P<body>.*?)<!-- /(?P=name) -->", re.S)
# benchmark folders of the rules with a job per shard or per model
SHARD_RULES = {"gallery": "gallery_shard", "generated": "generate_shard", "aligned": "align_shard",
               "eval": "evaluate"}  # fmt: skip
VARIANT = "generation:\n  variants:\n    yaw: 20.0\n"


def dry_run(workdir: Path, configfiles: list[Path], *extra: str) -> str:
    """The "Job stats" table a dry-run of the demo workflow prints, as printed."""
    snakefile = str(REPO / "Snakefile")
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", snakefile, "-d", str(workdir),
           "--configfile", *map(str, configfiles), *extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("total"))
    return "\n".join(lines[start : end + 1])


def total(table: str) -> str:
    return table.splitlines()[-1].split()[-1]


def fresh(configs: list[str], *extra: str) -> str:
    """The job stats of a config planned in an empty folder (what a first run does)."""
    with tempfile.TemporaryDirectory() as empty:
        return dry_run(Path(empty), [REPO / "config" / c for c in configs], *extra)


def _code(text: str) -> str:
    return f"\n```\n{text.strip()}\n```\n"


class Run:
    """A finished demo (its folder and config file), the source of the run's figures."""

    def __init__(self, workdir: Path, configfile: Path):
        self.workdir, self.configfile = Path(workdir), Path(configfile)

    def summary(self) -> str:
        return _code((self.workdir / "results/eval/summary.md").read_text())

    def packing(self) -> str:
        """The packed identities before (their gallery faces: the trace's first row) and after
        (the references' recorded quality), in the embedder's space."""
        import pandas as pd
        import yaml

        from hyperface.storage import manifests

        first = pd.read_parquet(self.workdir / "results/pack/trace.parquet").iloc[0]
        after = manifests.read_meta(self.workdir / "results/references.parquet")["quality"]
        alpha = yaml.safe_load(self.configfile.read_text())["packing"]["alpha"]
        rows = [
            ("minimum pairwise distance", first["min_distance"], after["min_distance"]),
            ("mean nearest-neighbour distance", first["mean_nn_distance"],
             after["mean_nn_distance"]),
            ("mean distance to the nearest gallery face", abs(first["regulariser"]) / alpha,
             after["mean_gallery_distance"]),
        ]  # fmt: skip
        head = "| identities | before packing (their gallery faces) | after packing |\n"
        head += "|---|---:|---:|\n"
        return "\n" + head + "".join(f"| {n} | {b:.3f} | {a:.3f} |\n" for n, b, a in rows)

    def judge(self) -> str:
        """The judge's table of the dataset card."""
        card = (self.workdir / "results/DATASET_CARD.md").read_text().splitlines()
        start = next(i for i, line in enumerate(card) if line.startswith("| judge |"))
        end = next(i for i in range(start, len(card)) if not card[i].startswith("|"))
        return _code("\n".join(card[start:end]))

    def _card_table(self, opening: str) -> list[str]:
        """The lines of the dataset card's table that follows the line starting ``opening``."""
        card = (self.workdir / "results/DATASET_CARD.md").read_text().splitlines()
        start = next(i for i, line in enumerate(card) if line.startswith(opening))
        first = next(i for i in range(start, len(card)) if card[i].startswith("|"))
        end = next((i for i in range(first, len(card)) if not card[i].startswith("|")), len(card))
        return card[first:end]

    def spread(self) -> str:
        """The card's table of what packing changed, in the judge's space."""
        return "\n" + "\n".join(self._card_table("What packing changed")) + "\n"

    def filters(self) -> str:
        """The card's filter table: redrawn and given-up images, then the dataset's filters."""
        return _code("\n".join(self._card_table("## Filters")))

    def realised(self) -> str:
        """How near each identity's face came to its packed reference, and to the gallery face
        the search started from (the reference's nearest: ``nearest_gallery_cos``)."""
        import numpy as np
        import pandas as pd

        from hyperface.storage import manifests

        shards = sorted((self.workdir / "results/generated").glob("shard-*.parquet"))
        gen = pd.concat([manifests.read_manifest(f, ["identity", "realised_cos"]) for f in shards])
        reached = gen.groupby("identity")["realised_cos"].first()
        refs = manifests.read_manifest(self.workdir / "results/references.parquet",
                                       ["identity", "nearest_gallery_cos"])  # fmt: skip
        start = refs.set_index("identity").loc[reached.index, "nearest_gallery_cos"]
        rows = [("nearest gallery face (where the search starts)", start.to_numpy()),
                ("face realised by the search", reached.to_numpy())]  # fmt: skip
        head = "| cosine to the packed reference | mean | min | max |\n|---|---:|---:|---:|\n"
        return (
            "\n"
            + head
            + "".join(
                f"| {name} | {np.mean(v):.3f} | {np.min(v):.3f} | {np.max(v):.3f} |\n"
                for name, v in rows
            )
        )

    def variation(self) -> str:
        """What the variation rule measured on the gallery, beside what SFace's published
        threshold would accept on the same pairs."""
        import json

        import numpy as np

        from hyperface.recognition.embedders import SFaceEmbedder
        from hyperface.storage import manifests

        measured = json.loads((self.workdir / "results/variation.json").read_text())
        accept, yaw = measured["accept"], measured["yaw"]
        emb = manifests.read_embeddings(self.workdir / "results/gallery.parquet")
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        published = float(
            ((emb @ emb.T)[np.triu_indices(len(emb), 1)] >= SFaceEmbedder.threshold).mean()
        )
        return (
            f"\n| measured on the gallery | value |\n|---|---:|\n"
            f"| SFace threshold at FAR {accept['far']:g} ({accept['pairs']:,} pairs of different "
            f"faces) | {accept['threshold']:.3f} |\n"
            f"| pairs SFace's published {SFaceEmbedder.threshold} accepts | {published:.1%} |\n"
            f"| yaw direction: faces, held-out correlation | {yaw['faces']}, "
            f"{yaw['heldout_r']:.2f} |\n"
        )

    def pose(self) -> str:
        """MTCNN's verdict on the generated images and the head pose spread it measures."""
        import pandas as pd

        images = pd.read_parquet(self.workdir / "results/stats/images.parquet")
        found = images["status"].eq("ok")
        per_identity = images.groupby("identity")
        head = (f"MTCNN found a face (probability >= 0.9) in {found.sum()} of {len(images)} "
                "generated images.\n\n| degrees | std | 5th percentile | 95th percentile | "
                "std within an identity (mean) |\n|---|---:|---:|---:|---:|\n")  # fmt: skip
        rows = [f"| {k} | {images[k].std():.1f} | {images[k].quantile(0.05):.1f} | "
                f"{images[k].quantile(0.95):.1f} | {per_identity[k].std().mean():.1f} |\n"
                for k in ("yaw", "pitch", "roll")]  # fmt: skip
        return "\n" + head + "".join(rows)

    def real_photos(self) -> str:
        """The trained model and the embedder (SFace, a real recogniser) on face_recognition's
        photos of real people (:mod:`hyperface.quality.real_photos`)."""
        from hyperface.quality import real_photos
        from hyperface.recognition.embedders import load_embedder
        from hyperface.stages.evaluate import recogniser_features

        people, crops = real_photos.aligned_photos(real_photos.installed_photos())
        trained = self.workdir / "results/train/model.safetensors"
        sface = load_embedder("sface", self.workdir / "resources/packaged/sface")
        verdicts = {
            "trained on the demo's dataset": real_photos.judge_photos(
                recogniser_features(trained, batch_size=64, device="cpu"), people, crops),
            "SFace (the embedder, trained on real faces)": real_photos.judge_photos(
                sface.features, people, crops),
        }  # fmt: skip
        return "\n" + real_photos.table(verdicts)

    def timing(self) -> str:
        """Seconds per rule over its jobs and the longest job, from the benchmark files."""
        import pandas as pd

        root = self.workdir / "results/benchmarks"
        rows = []
        for f in sorted(root.rglob("*.tsv")):
            rel = f.relative_to(root)
            rule = SHARD_RULES.get(rel.parts[0], rel.parts[0]) if len(rel.parts) > 1 else rel.stem
            rows.append((rule, float(pd.read_csv(f, sep="\t")["s"].iloc[-1])))
        table = pd.DataFrame(rows, columns=["rule", "s"]).groupby("rule")["s"]
        stats = table.agg(["sum", "count", "max"]).sort_values("sum", ascending=False)
        head = "| rule | jobs | seconds (all jobs) | longest job (s) |\n|---|---:|---:|---:|\n"
        return (
            "\n"
            + head
            + "".join(
                f"| {rule} | {int(r['count'])} | {r['sum']:.1f} | {r['max']:.1f} |\n"
                for rule, r in stats.iterrows()
            )
            + f"| all | {int(stats['count'].sum())} | {stats['sum'].sum():.1f} | |\n"
        )

    def machine(self) -> str:
        """The CPU this run's figures came from: its model and the vector units its float kernels
        chose among."""
        info = Path("/proc/cpuinfo")
        lines = info.read_text().splitlines() if info.exists() else []
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                     "unknown CPU")  # fmt: skip
        flags = next((set(ln.split(":", 1)[1].split()) for ln in lines if ln.startswith("flags")),
                     set())  # fmt: skip
        units = [n for n, f in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AMX", "amx_tile"))
                 if f in flags]  # fmt: skip
        return f"{model} ({', '.join(units) or 'no AVX2'})"

    def variant_rerun(self) -> str:
        overlay = self.workdir / "variant.yaml"
        overlay.write_text(VARIANT)
        try:
            return _code(dry_run(self.workdir, [self.configfile, overlay]))
        finally:
            overlay.unlink()


def planned(configs: list[str]) -> str:
    """What ``python -m hyperface.plan --configfile <configs>`` prints."""
    from hyperface import plan

    s = plan.settings_of([str(REPO / "config" / c) for c in configs], [])
    rates = plan.load_rates()
    stages = plan.stages(s, rates, plan.evaluations_of(s))
    return _code(plan.report(stages, rates, "gpu", 8, ", ".join(f"config/{c}" for c in configs)))


PAPER_50K = ("--config", 'packing={"n_identities": 50000}', 'gallery={"size": 50000}')
FIGURES: dict[str, Callable[[Run], str]] = {
    "demo-summary": Run.summary,
    "demo-packing": Run.packing,
    "demo-judge": Run.judge,
    "demo-spread": Run.spread,
    "demo-filters": Run.filters,
    "demo-realised": Run.realised,
    "demo-pose": Run.pose,
    "demo-variation": Run.variation,
    "demo-real-photos": Run.real_photos,
    "demo-jobs": lambda run: total(fresh(["config.yaml"])),
    "paper-dry-run": lambda run: _code(fresh(["paper.yaml"])),
    "paper-50k-jobs": lambda run: total(fresh(["paper.yaml"], *PAPER_50K)),
    "large-jobs": lambda run: total(fresh(["paper.yaml", "large.yaml"])),
    "variant-rerun": Run.variant_rerun,
    "plan-paper": lambda run: planned(["paper.yaml"]),
    "plan-large": lambda run: planned(["paper.yaml", "large.yaml"]),
}


# How far each figure moves on another x86 CPU; a figure not named here is exact (job counts,
# plans, filter counts). Set at about twice the largest move measured under other kernels (the
# demo under AVX2-only kernels: tests/test_workflow.py; an AMD EPYC against this README's Intel
# Xeon), and for what a trained model gives, at 3 x sqrt(2) standard deviations over training seeds
# (python -m hyperface.bench.seeds): two independent runs stay within it.
TRAINED = "trained on the demo's dataset"
BOUNDS: dict[str, Bound] = {
    "demo-summary": Bound(labels={"accuracy (%)": 8.0, "std (%)": 5.0}),
    "demo-real-photos": Bound(0.01, labels={TRAINED: 0.25}),
    "demo-packing": Bound(0.002),
    "demo-judge": Bound(0.01, 3.0),
    "demo-spread": Bound(0.03, 2.0),
    "demo-realised": Bound(0.005),
    "demo-pose": Bound(0.5),
    "demo-variation": Bound(0.005, 1.0),
}

# figures that differ from run to run (wall times, the machine): rewritten, never compared
TIMED: dict[str, Callable[[Run], str]] = {"demo-timing": Run.timing, "demo-machine": Run.machine}


def figures(run: Run, names: list[str] | None = None) -> dict[str, str]:
    """The README's figures as this run and these dry-runs give them, each with its bound in
    words under it."""
    made = {}
    for name in names or FIGURES:
        caption = BOUNDS.get(name, EXACT).caption()
        text = FIGURES[name](run)
        made[name] = f"{text.rstrip()}\n\n{caption}\n" if caption else text
    return made


def differences(readme: str, made: dict[str, str]) -> list[str]:
    """The figures of ``made`` that the README lacks, or whose README text differs beyond the
    figure's bound, each with what moved."""
    shown = {m["name"]: m["body"] for m in BLOCK.finditer(readme)}
    out = []
    for name, body in made.items():
        if name not in shown:
            out.append(f"{name}: not in the README")
            continue
        out += [f"{name}: {why}" for why in departures(shown[name], body, BOUNDS.get(name, EXACT))]
    return out


def rewrite(readme: str, made: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        name = match["name"]
        body = made.get(name, match["body"])
        return f"<!-- {name} -->{body}<!-- /{name} -->"

    return BLOCK.sub(fill, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("."), help="a finished demo's folder")
    ap.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    ap.add_argument("--check", action="store_true", help="list differing figures, change nothing")
    ap.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="these figures alone")
    args = ap.parse_args(argv)
    run = Run(args.workdir, args.configfile)
    made = figures(run, args.only)
    text = args.readme.read_text()
    differ = differences(text, made)
    if args.check:
        for why in differ:
            print(f"{args.readme}: figure {why}")
        return 1 if differ else 0
    args.readme.write_text(rewrite(text, {**made, **{n: f(run) for n, f in TIMED.items()}}))
    names = sorted({why.split(":")[0] for why in differ})
    print(
        f"{args.readme}: {len(names)} figure(s) beyond their bounds: {', '.join(names) or 'none'}"
        "; every figure rewritten from this run"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
