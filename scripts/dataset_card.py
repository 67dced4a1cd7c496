"""Rule dataset_card: DATASET_CARD.md beside the dataset."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.settings import Settings
from hyperface.stages.dataset_card import write_dataset_card

setup_job(snakemake.log[0])
i, p = snakemake.input, snakemake.params
write_dataset_card(
    i.dataset,
    i.counts,
    i.references,
    i.leakage[0] if i.leakage else None,
    snakemake.output[0],
    settings=Settings.from_section(p.settings),
    tiny_root=p.tiny_root,
    judge=list(i.judge) or None,
)
