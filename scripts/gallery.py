"""Rule gallery: concatenate the gallery shards."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.gallery import concat_gallery

setup_job(snakemake.log[0])
concat_gallery(list(snakemake.input), snakemake.output[0], snakemake.params.root)
