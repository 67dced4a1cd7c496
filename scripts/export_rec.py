"""Rule export_rec: dataset.parquet as insightface's train.rec/train.idx."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.export_rec import export_rec

setup_job(snakemake.log[0])
o = snakemake.output
export_rec(
    snakemake.input[0], snakemake.params.root, o.rec, o.idx, o.property, size=snakemake.params.size
)
