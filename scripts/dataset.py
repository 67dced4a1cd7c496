"""Rule dataset: merge and filter the aligned shards into dataset.parquet."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.settings import DatasetSettings
from hyperface.stages.dataset import build_dataset

setup_job(snakemake.log[0])
p = snakemake.params
leakage = snakemake.input.leakage
build_dataset(
    list(snakemake.input.aligned),
    dict(snakemake.output.items()),
    p.root,
    n_identities=p.n_identities,
    holdout_identities=p.holdout_identities,
    images_per_identity=p.images_per_identity,
    dataset=DatasetSettings.from_section(p.dataset),
    leakage_pairs=leakage[0] if leakage else None,
)
