"""Rule stats: dataset statistics (identity consistency, similarity distributions, pose)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.stats import dataset_stats

setup_job(snakemake.log[0], snakemake.threads)
out = snakemake.output
dataset_stats(
    list(snakemake.input.aligned),
    snakemake.input.references,
    out.identities,
    out.similarity,
    out.images,
)
