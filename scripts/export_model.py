"""Rule export_model: the trained backbone as ONNX, and its model card."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.model import export_model

setup_job(snakemake.log[0])
i, o, p = snakemake.input, snakemake.output, snakemake.params
export_model(i.weights, i.history, i.summary, i.summary_md, i.references, i.dataset, o.onnx, o.card,
             settings=dict(p.settings), training=dict(p.training), tiny_root=p.tiny_root)
