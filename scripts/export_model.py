"""Rule export_model: the trained backbone as ONNX, and its model card."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.settings import Settings
from hyperface.stages.export_model import export_model

setup_job(snakemake.log[0])
i, o, p = snakemake.input, snakemake.output, snakemake.params
settings = Settings.from_section({**p.settings, "training": p.training})
export_model(dict(i.items()), o.onnx, o.card, settings=settings, tiny_root=p.tiny_root)
