"""Rule plots: the figures of the report."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.stages.plots import make_plots

setup_job(snakemake.log[0])
i = snakemake.input
make_plots(trace=i.trace, references=i.references, gallery=i.gallery, generated=list(i.generated),
           aligned=list(i.aligned),
           counts=i.counts, images=i.images, similarity=i.similarity, history=i.history,
           summary_md=i.summary, root=snakemake.params.root, out=dict(snakemake.output.items()),
           judge=dict(zip(("images", "identities", "gallery"), i.judge, strict=True)) if i.judge else None,
           grid_rows=snakemake.params.grid_rows)
