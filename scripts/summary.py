"""Rule summary: the benchmark table (Parquet and Markdown)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.summary import summarise

setup_job(snakemake.log[0])
summarise(list(snakemake.input), snakemake.output.parquet, snakemake.output.md)
