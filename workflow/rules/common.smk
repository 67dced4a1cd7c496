# Config validation, shard arithmetic and input functions. Parse-time work here is cheap and
# deterministic: every SLURM job re-parses this file and must plan the same DAG.
import math
import os
import sys

from snakemake.logging import logger
from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))

from hyperface.config_checks import config_errors  # noqa: E402
from hyperface.settings import Settings, SettingsError  # noqa: E402
from hyperface.generators.packaged import PACKAGED  # noqa: E402
from hyperface.reports.catalog import figures_drawn, inputs_read  # noqa: E402
from hyperface.storage.shards import SHARD_PATTERN, shard_names, shard_range  # noqa: E402
from hyperface.storage.shards import results_root  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")
try:  # the typed settings, once: rules pass plain sections as params, scripts type them again
    S = Settings.from_section(config)
except SettingsError as err:
    raise ValueError(f"invalid config:\n  {err}") from None
_errors = config_errors(S)
if _errors:
    raise ValueError("invalid config:\n  " + "\n  ".join(_errors))

R = S.results.rstrip("/")
N_IDENTITIES = S.packing.n_identities
GALLERY_SHARDS = shard_names(S.gallery.size, S.gallery.shard_size)
ID_SHARDS = shard_names(N_IDENTITIES, S.generation.identities_per_shard)
GRID_ROWS = 8  # identities in the report's image grids: the shards holding the first ones
GRID_SHARDS = ID_SHARDS[: math.ceil(GRID_ROWS / S.generation.identities_per_shard)]
KEEP_GENERATED = S.images.keep_generated

TINY = "resources/tiny"
TINY_FILES = {
    "arcface": f"{TINY}/arc2face/arcface.onnx",
    "arc2face_unet": f"{TINY}/arc2face/arc2face",
    "arc2face_encoder": f"{TINY}/arc2face/encoder",
    "base_model": f"{TINY}/stable-diffusion-v1-5",
    "ldm": f"{TINY}/ldm",
    "stylegan2": f"{TINY}/stylegan2/ffhq-tiny.safetensors",
}

# real face models copied out of PyPI packages (hyperface.generators.packaged): the demo's gallery, embedder
# and judge
PACKAGED_ROOT = "resources/packaged"
PACKAGED_FOLDERS = [f"{PACKAGED_ROOT}/{name}" for name in PACKAGED]
JUDGE = config["quality"]["judge"]
JUDGE_PARTS = ("images", "identities", "gallery")
JUDGE_OUTPUTS = [f"{R}/stats/judge_{part}.parquet" for part in JUDGE_PARTS]

BENCHMARKS = dict(config["evaluation"]["benchmarks"])
if config["evaluation"]["holdout_identities"]:
    BENCHMARKS["holdout"] = f"{R}/eval/holdout.bin"


def _norm(path):
    return os.path.normpath(str(path))


_MISSING = set()


def existing_or_built(*paths):
    """Model and benchmark files as inputs: those the workflow builds or that exist.

    A missing real weights file is not an input (so a dry-run plans the whole DAG on a machine
    without weights); it is reported once here and the job that needs it fails with its path
    before doing any work.
    """
    built = {_norm(p) for p in [*TINY_FILES.values(), *PACKAGED_FOLDERS, f"{R}/eval/holdout.bin"]}
    found = []
    for path in paths:
        if _norm(path) in built or os.path.exists(path):
            found.append(path)
        elif path not in _MISSING:
            _MISSING.add(path)
            logger.warning(f"not found (needed by the jobs that use it): {path}")
    return found


def root_param(levels=1):
    """A params function: the results root as the job sees it, ``levels`` above its first output."""
    return lambda wildcards, output: results_root(output[0], levels)


def gallery_weights():
    return existing_or_built(config["gallery"]["weights"], config["embedder"]["weights"])


def generation_weights():
    gen = config["generation"]
    return existing_or_built(
        os.path.join(gen["weights"], "arc2face"),
        os.path.join(gen["weights"], "encoder"),
        gen["base_model"],
    )


def gallery_indices(wildcards):
    r = shard_range(wildcards.shard, config["gallery"]["size"], config["gallery"]["shard_size"])
    return [r.start, r.stop]


def identity_range(wildcards):
    r = shard_range(wildcards.shard, N_IDENTITIES, config["generation"]["identities_per_shard"])
    return [r.start, r.stop]


def benchmark_bin(wildcards):
    return existing_or_built(BENCHMARKS[wildcards.bench])


# the models the evaluation compares: the one this run trains and the baselines of evaluation.models
BASELINES = dict(config["evaluation"]["models"])


def recogniser_path(wildcards):
    if wildcards.model == "trained":
        return f"{R}/train/model.safetensors"
    return BASELINES[wildcards.model]


def recogniser_file(wildcards):
    """The trained model (built by the train rule) or a baseline's file (when it exists)."""
    if wildcards.model == "trained":
        return recogniser_path(wildcards)
    return existing_or_built(recogniser_path(wildcards))


# Generic resources: memory and runtime grow with the work in a job and with each retry.
# Per-item seconds are conservative GPU estimates (the paper: 1.25 s per Arc2Face image on an
# RTX 3090); a profile can override any of them with set-resources.
GEN = config["generation"]
IMAGES_PER_GENERATE_JOB = GEN["identities_per_shard"] * GEN["images_per_identity"]


def generated_output(path):
    """The generated shards are removed once aligned unless ``images.keep_generated``."""
    return path if KEEP_GENERATED else temp(path)


def runtime(seconds_per_item, items, minimum=10):
    """Minutes for a job of ``items`` items, doubled on every retry."""
    return lambda wildcards, attempt: attempt * max(
        minimum, math.ceil(seconds_per_item * items / 60)
    )


def mem_mb(base):
    return lambda wildcards, attempt: base * attempt


LEAKAGE = config["leakage"]


def leakage_reference():
    """The real faces of the leakage check, as an input (the gallery is an input already)."""
    ref = LEAKAGE["reference"]
    return [] if ref in (None, "gallery") else existing_or_built(ref)


def leakage_to_exclude():
    return [f"{R}/leakage/pairs.parquet"] if LEAKAGE["reference"] and LEAKAGE["exclude"] else []


def final_outputs():
    """The default targets: the evaluation summary, the statistics, the plots, optional extras."""
    targets = [
        f"{R}/eval/summary.md",
        f"{R}/stats/identities.parquet",
        f"{R}/stats/filter_counts.parquet",
        *[f"{R}/plots/{f.name}.{f.ext}" for f in FIGURES],  # one added by an upgrade too
        f"{R}/DATASET_CARD.md",
    ]
    if LEAKAGE["reference"]:
        targets.append(f"{R}/leakage/pairs.parquet")
    if config["export"]["imagefolder"]:
        targets.append(f"{R}/imagefolder")
    if config["export"]["rec"]:
        targets.append(f"{R}/rec/train.rec")
    if config["export"]["model"]:
        targets.append(f"{R}/model/MODEL_CARD.md")
    return targets


CARD_SECTIONS = (
    "gallery",
    "embedder",
    "packing",
    "generation",
    "alignment",
    "dataset",
    "leakage",
    "quality",
)
# the report's figures (hyperface.reports.catalog) and the plots rule inputs they read
FIGURES = figures_drawn(keep_generated=KEEP_GENERATED, judge=bool(JUDGE["backend"]))
PLOT_INPUTS = {
    "trace": f"{R}/pack/trace.parquet",
    "references": f"{R}/references.parquet",
    "gallery": f"{R}/gallery.parquet",
    "generated": expand(f"{R}/generated/shard-{{shard}}.parquet", shard=GRID_SHARDS),
    "aligned": expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=GRID_SHARDS),
    "counts": f"{R}/stats/filter_counts.parquet",
    "images": f"{R}/stats/images.parquet",
    "similarity": f"{R}/stats/similarity.parquet",
    "history": f"{R}/train/history.parquet",
    "summary": f"{R}/eval/summary.md",
    "judge": JUDGE_OUTPUTS,
}


def report_output(figure):
    return report(
        f"{R}/plots/{figure.name}.{figure.ext}",
        caption=f"../report/{figure.name}.rst",
        category=figure.category,
        labels={"figure": figure.name.replace("_", " ")},
    )
