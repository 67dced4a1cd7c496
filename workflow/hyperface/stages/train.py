"""Training stage: the recognizer trained on dataset.parquet, resumable from its checkpoint."""

from __future__ import annotations

from pathlib import Path

from hyperface.recognition.training import train
from hyperface.settings import TrainingSettings
from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta, safetensors_metadata
from hyperface.storage.resume import claim_state


def train_model(
    dataset: str | Path,
    out_weights: str | Path,
    out_history: str | Path,
    root: str | Path,
    checkpoint_dir: str | Path,
    *,
    seed: int,
    training: TrainingSettings,
    device: str,
) -> None:
    """model.safetensors (with its lineage in the file's metadata) and the per-epoch history.

    The checkpoint is named by the job's lineage
    (settings + the dataset's lineage + device): a changed dataset starts over instead of
    resuming weights trained on other images, and the checkpoint is removed once the weights are
    written.
    """
    frame = manifests.read_manifest(dataset, ["label", "container", "row"])
    meta = lineage_meta("train", [seed, training], {"dataset": dataset})
    checkpoint = claim_state(checkpoint_dir, "checkpoint", meta, device)
    result = train(
        frame,
        root,
        out_weights,
        checkpoint,
        training,
        seed=seed,
        device=device,
        metadata=safetensors_metadata(meta),
    )
    manifests.write_frame(out_history, result.history, manifests.history_schema(), meta)
    checkpoint.unlink(missing_ok=True)
