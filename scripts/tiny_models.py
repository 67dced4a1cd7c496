"""Rule tiny_models: tiny random checkpoints in the real formats (for the CPU demo)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.generators.tiny import write_all
from hyperface.runtime import setup_job

setup_job(snakemake.log[0], snakemake.threads)
write_all(snakemake.params.root, seed=snakemake.params.seed, resolution=snakemake.params.resolution)
