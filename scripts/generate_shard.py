"""Rule generate_shard: the images of one shard of identities (Arc2Face or MobileStyleGAN)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import EmbedderSettings, Encoding, GallerySettings, GenerationSettings
from hyperface.stages.generate_shard import GenerationInputs, generate_shard

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
generation = GenerationSettings.from_section(p.generation)
i = snakemake.input
inputs = (
    GenerationInputs(
        i.references,
        i.gallery,
        i.variation,
        GallerySettings.from_section(p.gallery),
        EmbedderSettings.from_section(p.embedder),
    )
    if generation.generator == "mobilestylegan"
    else GenerationInputs(i.references)
)
generate_shard(
    inputs,
    range(*p.identities),
    snakemake.output[0],
    p.root,
    seed=p.seed,
    generation=generation,
    encoding=Encoding.from_section(p.encoding, key="images.generated"),
    device=pick_device(p.device),
)
