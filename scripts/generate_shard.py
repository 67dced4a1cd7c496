"""Rule generate_shard: Arc2Face images for one shard of identities."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import Encoding, GenerationSettings
from hyperface.stages.generate_shard import generate_shard

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
generate_shard(
    snakemake.input.references,
    range(*p.identities),
    snakemake.output[0],
    p.root,
    seed=p.seed,
    generation=GenerationSettings.from_section(p.generation),
    encoding=Encoding.from_section(p.encoding, key="images.generated"),
    device=pick_device(p.device),
)
