# Config validation, shard arithmetic and input functions. Parse-time work here is cheap and
# deterministic: every SLURM job re-parses this file and must plan the same DAG.
import math
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))

from hyperface import plan as planning  # noqa: E402
from hyperface.config_checks import config_errors  # noqa: E402
from hyperface.generators.packaged import PACKAGED  # noqa: E402
from hyperface.preflight import named_inputs  # noqa: E402
from hyperface.preflight import problems as input_problems  # noqa: E402
from hyperface.preflight import refusal as input_refusal  # noqa: E402
from hyperface.reports.catalog import figures_drawn, inputs_read  # noqa: E402
from hyperface.settings import Settings, schema  # noqa: E402
from hyperface.storage.lineage import DigestCache  # noqa: E402
from hyperface.storage.shards import SHARD_PATTERN, shard_names, shard_range  # noqa: E402
from hyperface.storage.shards import default_results, results_root  # noqa: E402
from hyperface.storage.stamps import stamp, stamp_path  # noqa: E402
from hyperface.validation import config_problems, refusal  # noqa: E402

# every problem at once, one line each, before anything is planned
_problems = config_problems(config, schema())
if _problems:
    raise WorkflowError(refusal(_problems))
validate(config, schema="../schemas/config.schema.yaml")  # fills in the schema's defaults
S = Settings.from_section(config)  # the typed settings, once (scripts type their params again)
_problems = config_errors(S)
if _problems:
    raise WorkflowError(refusal(_problems))

R = (S.results or default_results(workflow.overwrite_configfiles)).rstrip("/")
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

# real face models copied out of PyPI packages (hyperface.generators.packaged): the demo's
# gallery, embedder and judge
PACKAGED_ROOT = "resources/packaged"
PACKAGED_FOLDERS = [f"{PACKAGED_ROOT}/{name}" for name in PACKAGED]
JUDGE = config["quality"]["judge"]
JUDGE_PARTS = ("images", "identities", "gallery", "spread")
JUDGE_OUTPUTS = [f"{R}/stats/judge_{part}.parquet" for part in JUDGE_PARTS]

BENCHMARKS = dict(config["evaluation"]["benchmarks"])
# the models the evaluation compares: the one this run trains and the baselines of evaluation.models
BASELINES = dict(config["evaluation"]["models"])
if config["evaluation"]["holdout_identities"]:
    BENCHMARKS["holdout"] = f"{R}/eval/holdout.bin"  # built by the holdout_bin rule


def _norm(path):
    return os.path.normpath(str(path))


# Models, benchmarks and image folders: content decides, not times (hyperface.storage.stamps).
# Rules take an input's content stamp, rewritten only when its fingerprint changes, and the path
# itself when a rule builds it (the demo's tiny and packaged models).
HOLDOUT_BIN = f"{R}/eval/holdout.bin"  # an output of this workflow: Snakemake tracks it
BUILT = {_norm(p) for p in [*TINY_FILES.values(), *PACKAGED_FOLDERS]}
NAMED = named_inputs(S)
FINGERPRINTS = "resources/fingerprints"
# each stamp written, or brought up to date with its input's content, by the process that plans
# (a job's own parse on a compute node only needs the stamps' names)
if workflow.is_main_process:
    _digests = DigestCache(f"{FINGERPRINTS}/digests.json")
    for _path in dict.fromkeys([*BUILT, *(_norm(item.path) for item in NAMED)]):
        if os.path.exists(_path):
            stamp(_path, FINGERPRINTS, _digests, built=_path in BUILT)
    _digests.save()


def stamp_of(path):
    return str(stamp_path(path, FINGERPRINTS))


PACKAGED_STAMP = stamp_of(PACKAGED_ROOT).removesuffix(".fingerprint") + "%2F{name}.fingerprint"


def by_content(*paths):
    """Inputs standing for model, benchmark and image-folder paths: the content stamp of each,
    and the path itself where a job builds it (as ancient, so its time decides nothing). A missing
    external one is no input (a dry-run still plans the whole DAG): the check below lists it, and
    a run stops before any job."""
    found = []
    for path in paths:
        if _norm(path) == _norm(HOLDOUT_BIN):
            found.append(path)
        elif _norm(path) in BUILT:
            # its rule writes its stamp too; the stamp, not the folder's time, decides
            found += [ancient(path), stamp_of(path)]
        elif os.path.exists(path):
            found.append(stamp_of(path))
    return found


GALLERY_FILES = expand(f"{R}/gallery/shard-{{shard}}.parquet", shard=GALLERY_SHARDS)
ALIGNED_FILES = expand(f"{R}/aligned/shard-{{shard}}.parquet", shard=ID_SHARDS)


def products_of(setting):
    """The outputs made with the input a setting names: once they all exist it is not needed."""
    models, benchmarks = ["trained", *BASELINES], list(BENCHMARKS)
    if setting.startswith("evaluation.benchmarks."):
        return [f"{R}/eval/{m}/{setting.split('.')[-1]}.parquet" for m in models]
    if setting.startswith("evaluation.models."):
        return [f"{R}/eval/{setting.split('.')[-1]}/{b}.parquet" for b in benchmarks]
    return {
        "gallery.weights": GALLERY_FILES,
        "embedder.weights": [*GALLERY_FILES, *ALIGNED_FILES],
        "generation.weights": ALIGNED_FILES,
        "generation.base_model": ALIGNED_FILES,
        "quality.judge.weights": JUDGE_OUTPUTS,
        "quality.judge.detector": JUDGE_OUTPUTS,
        "leakage.reference": [f"{R}/leakage/pairs.parquet"],
    }[setting]


# every input that no job makes, checked once over the jobs that need it - listed in a dry-run,
# and a run stops before its first job (onstart, in the Snakefile)
INPUT_PROBLEMS = input_problems(
    [
        item
        for item in NAMED
        if workflow.is_main_process
        and _norm(item.path) not in BUILT
        and not all(os.path.exists(out) for out in products_of(item.setting))
    ]
)
if INPUT_PROBLEMS:
    logger.warning(input_refusal(INPUT_PROBLEMS, "a run stops before its first job"))


def root_param(levels=1):
    """A params function: the results root as the job sees it, ``levels`` above its first output."""
    return lambda wildcards, output: results_root(output[0], levels)


def gallery_weights():
    return by_content(S.gallery.weights, S.embedder.weights)


# MobileStyleGAN identities start from gallery faces and keep the variants the embedder accepts
STYLEGAN_IDENTITIES = S.generation.generator == "mobilestylegan"


def generation_weights():
    gen = S.generation
    if STYLEGAN_IDENTITIES:
        return by_content(gen.weights)
    return by_content(f"{gen.weights}/arc2face", f"{gen.weights}/encoder", gen.base_model)


def for_stylegan_identities(value):
    """``value`` where the identities are MobileStyleGAN's, else nothing (an input or param that
    Arc2Face does not read, so changing it re-runs nothing)."""
    return value if STYLEGAN_IDENTITIES else []


# the generation keys only one generator reads: a change to the other's re-runs nothing
ARC2FACE_KEYS = ("base_model", "beta", "batch_size", "steps", "guidance_scale")
STYLEGAN_KEYS = ("realise", "variants")


def generation_params():
    unread = ARC2FACE_KEYS if STYLEGAN_IDENTITIES else STYLEGAN_KEYS
    return {k: v for k, v in config["generation"].items() if k not in unread}


def gallery_indices(wildcards):
    r = shard_range(wildcards.shard, config["gallery"]["size"], config["gallery"]["shard_size"])
    return [r.start, r.stop]


def identity_range(wildcards):
    r = shard_range(wildcards.shard, N_IDENTITIES, config["generation"]["identities_per_shard"])
    return [r.start, r.stop]


def benchmark_bin(wildcards):
    return by_content(BENCHMARKS[wildcards.bench])


def recogniser_path(wildcards):
    if wildcards.model == "trained":
        return f"{R}/train/model.safetensors"
    return BASELINES[wildcards.model]


def recogniser_file(wildcards):
    """The trained model (built by the train rule) or a baseline's file (when it exists)."""
    if wildcards.model == "trained":
        return recogniser_path(wildcards)
    return by_content(recogniser_path(wildcards))


# Generic resources. A job's runtime is the planner's estimate for it (hyperface.plan: the work
# in one job at the rates of hyperface/throughputs.yaml, with headroom), the same figures
# `python -m hyperface.plan` prints; a profile can override any of them with set-resources.
RATES = planning.load_rates()
PLAN = {stage.rule: stage for stage in planning.stages(S, RATES, planning.evaluations_of(S))}


def runtime_of(rule):
    """Minutes for a job of ``rule``: the same on a retry of a job that resumes (pack, train,
    the generation and alignment shards), more on each retry of one that starts over."""
    return lambda wildcards, attempt: planning.attempt_minutes(PLAN[rule], RATES, attempt)


# a partition file in the profile (the SLURM executor's partition config) states how long a job
# may run: a job that would ask more is refused now, naming the setting to change
_PARTITIONS = getattr(workflow.executor_settings, "partition_config", None)
if _PARTITIONS and os.path.exists(_PARTITIONS) and workflow.is_main_process:
    _problems = planning.too_long(PLAN.values(), RATES, planning.partition_limits(_PARTITIONS))
    if _problems:
        raise WorkflowError(refusal(_problems))


def generated_output(path):
    """The generated shards are removed once aligned unless ``images.keep_generated``."""
    return path if KEEP_GENERATED else temp(path)


def mem_mb(base):
    return lambda wildcards, attempt: base * attempt


LEAKAGE = config["leakage"]


def leakage_reference():
    """The real faces of the leakage check, as an input (the gallery is an input already)."""
    ref = LEAKAGE["reference"]
    return [] if ref in (None, "gallery") else by_content(ref)


def leakage_to_exclude():
    return [f"{R}/leakage/pairs.parquet"] if LEAKAGE["reference"] and LEAKAGE["exclude"] else []


def final_outputs():
    """The default targets: the evaluation summary, the statistics, the plots, optional extras."""
    targets = [
        # what a user reads or loads is a target, so deleting one re-plans it
        f"{R}/gallery.parquet",
        f"{R}/references.parquet",
        f"{R}/dataset.parquet",
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


def card_settings():
    """The sections the cards describe; generation without the keys its generator never reads."""
    return {key: generation_params() if key == "generation" else config[key]
            for key in CARD_SECTIONS}  # fmt: skip


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
