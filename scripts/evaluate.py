"""Rule evaluate: 10-fold verification of one model on one benchmark .bin."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.stages.evaluate import evaluate

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
w = snakemake.wildcards
evaluate(
    p.model,
    p.bin,
    snakemake.output[0],
    model_name=w.model,
    benchmark=w.bench,
    batch_size=p.batch_size,
    device=pick_device(p.device),
)
