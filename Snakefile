# HyperFace: synthetic face-recognition datasets by packing identities on the embedding sphere.
# The DAG, layout and config interface are described in README.md and config/README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    shard=SHARD_PATTERN,
    bench="|".join(BENCHMARKS) or "^$",
    model="|".join(["trained", *BASELINES]),


include: "workflow/rules/tiny_models.smk"
include: "workflow/rules/gallery.smk"
include: "workflow/rules/pack.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"


onstart:
    if INPUT_PROBLEMS:  # a run, not a dry-run: nothing starts, nothing is submitted
        raise WorkflowError(input_refusal(INPUT_PROBLEMS))


rule all:
    default_target: True
    input:
        final_outputs(),
