"""Rule evaluate: 10-fold verification on one benchmark .bin."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.stages.evaluate import evaluate

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
evaluate(snakemake.input.weights, p.bin, snakemake.output[0],
         benchmark=snakemake.wildcards.bench, batch_size=p.batch_size, device=pick_device(p.device))
