"""Rule leakage: top-k synthetic-real pairs by cosine similarity, with pictures."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import EmbedderSettings, LeakageSettings
from hyperface.stages.leakage import find_leakage

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
find_leakage(
    list(snakemake.input.aligned),
    snakemake.input.gallery,
    snakemake.output.pairs,
    snakemake.output.pictures,
    p.root,
    leakage=LeakageSettings.from_section(p.leakage),
    embedder=EmbedderSettings.from_section(p.embedder),
    device=pick_device(p.device),
)
