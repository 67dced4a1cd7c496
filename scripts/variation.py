"""Rule variation: the yaw direction and acceptance threshold of MobileStyleGAN identities."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.settings import GallerySettings
from hyperface.stages.variation import fit_variation

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
fit_variation(
    snakemake.input.gallery,
    snakemake.output[0],
    seed=p.seed,
    gallery=GallerySettings.from_section(p.gallery),
    accept_far=p.accept_far,
)
