"""Rule plots: the figures of the report."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.plots import make_plots

setup_job(snakemake.log[0])
make_plots(
    dict(snakemake.input.items()),
    dict(snakemake.output.items()),
    snakemake.params.root,
    grid_rows=snakemake.params.grid_rows,
)
