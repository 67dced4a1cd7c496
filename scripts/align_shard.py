"""Rule align_shard: MTCNN alignment, re-embedding and identity consistency for one shard."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.stages.align import align_shard

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
align_shard(snakemake.input.generated, snakemake.input.references, snakemake.output[0], p.root,
            alignment=dict(p.alignment), embedder=dict(p.embedder), encoding=dict(p.encoding),
            device=pick_device(p.device))
