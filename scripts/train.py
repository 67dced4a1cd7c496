"""Rule train: iResNet + margin head on dataset.parquet (resumes from its checkpoint)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from pathlib import Path

from hyperface import manifests
from hyperface.runtime import pick_device, setup_job
from hyperface.training import train

setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
# a checkpoint belongs to one config: a changed config starts over instead of resuming
checkpoint = Path(p.checkpoint_dir) / f"checkpoint-{manifests.config_hash([p.seed, p.training])}.pt"
frame = manifests.read_manifest(snakemake.input[0])
result = train(frame, p.root, snakemake.output.weights, checkpoint, seed=p.seed,
               device=pick_device(p.device), **p.training)
result.history.to_parquet(snakemake.output.history, index=False)
