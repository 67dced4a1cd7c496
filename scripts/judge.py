"""Rule judge: an independent detector and recogniser's verdict on the dataset and the gallery."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.settings import JudgeSettings
from hyperface.stages.judge import judge

setup_job(snakemake.log[0], snakemake.threads)
judge(
    list(snakemake.input.aligned),
    list(snakemake.input.gallery),
    snakemake.input.references,
    snakemake.params.root,
    dict(snakemake.output.items()),
    settings=JudgeSettings.from_section(snakemake.params.judge),
)
