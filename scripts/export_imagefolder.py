"""Rule export_imagefolder: dataset.parquet as one folder per identity."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.export_imagefolder import export_imagefolder

setup_job(snakemake.log[0])
export_imagefolder(snakemake.input[0], snakemake.params.root, snakemake.output[0])
