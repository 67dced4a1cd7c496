"""Rule pack: the HyperFace packing optimisation."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import PackingSettings
from hyperface.stages.pack import pack

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
pack(
    snakemake.input[0],
    snakemake.output.references,
    snakemake.output.trace,
    p.checkpoint_dir,
    seed=p.seed,
    packing=PackingSettings.from_section(p.packing),
    device=pick_device(p.device),
)
