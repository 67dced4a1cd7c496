"""Rule align_shard: MTCNN alignment, re-embedding and identity consistency for one shard."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import AlignmentSettings, EmbedderSettings, Encoding
from hyperface.stages.align_shard import align_shard

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
align_shard(
    snakemake.input.generated,
    snakemake.input.references,
    snakemake.output[0],
    p.root,
    alignment=AlignmentSettings.from_section(p.alignment),
    embedder=EmbedderSettings.from_section(p.embedder),
    encoding=Encoding.from_section(p.encoding, key="images.aligned"),
    device=pick_device(p.device),
)
