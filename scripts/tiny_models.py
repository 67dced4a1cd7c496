"""Rule tiny_models: tiny random checkpoints in the real formats (for the CPU demo)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.generators.tiny import write_all
from hyperface.runtime import setup_job
from hyperface.storage.stamps import stamp_built

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
write_all(p.root, seed=p.seed, resolution=p.resolution)
stamp_built(p.models, p.fingerprints)
