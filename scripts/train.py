"""Rule train: iResNet + margin head on dataset.parquet (resumes from its checkpoint)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import pick_device, setup_job
from hyperface.settings import TrainingSettings
from hyperface.stages.train import train_model

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
train_model(
    snakemake.input[0],
    snakemake.output.weights,
    snakemake.output.history,
    p.root,
    p.checkpoint_dir,
    seed=p.seed,
    training=TrainingSettings.from_section(p.training),
    device=pick_device(p.device),
)
