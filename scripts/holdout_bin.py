"""Rule holdout_bin: a verification .bin from identities held out of training."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.holdout_bin import build_holdout_bin

setup_job(snakemake.log[0])
p = snakemake.params
build_holdout_bin(
    list(snakemake.input),
    snakemake.output[0],
    p.root,
    seed=p.seed,
    n_identities=p.n_identities,
    holdout_identities=p.holdout_identities,
    max_pairs=p.max_pairs,
)
