"""Rule gallery_shard: one shard of gallery faces and their embeddings."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import EmbedderSettings, Encoding, GallerySettings
from hyperface.stages.gallery_shard import gallery_shard

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
gallery_shard(
    range(*p.indices),
    snakemake.output[0],
    seed=p.seed,
    gallery=GallerySettings.from_section(p.gallery),
    embedder=EmbedderSettings.from_section(p.embedder),
    encoding=Encoding.from_section(p.encoding, key="images.gallery"),
    device=pick_device(p.device),
)
