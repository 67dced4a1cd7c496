"""Model export stage: the trained backbone as ONNX, with its model card (interface, training
data and recipe, evaluation, lineage, licences)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from hyperface import manifests
from hyperface.licences import licence_rows, licence_table, most_restrictive
from hyperface.lineage import lineage_meta, provenance, recorded_meta
from hyperface.onnx_export import CONTRACT, INPUT, OUTPUT, export_onnx
from hyperface.stages.card import models_used, recipe_lines
from hyperface.training import load_backbone

log = logging.getLogger(__name__)


def export_model(weights: str | Path, history: str | Path, summary: str | Path, summary_md: str | Path,
                 references: str | Path, dataset: str | Path, out_onnx: str | Path, out_card: str | Path,
                 *, settings: dict, training: dict, tiny_root: str) -> float:
    """model.onnx (checked against the weights; the difference is returned) and MODEL_CARD.md.

    ``settings`` holds the config sections the dataset card reads, ``training`` the training one.
    """
    weights_meta = recorded_meta(Path(weights))
    meta = lineage_meta("export_model", [training], {"model": weights, "summary": summary})
    backbone = load_backbone(weights)
    difference = export_onnx(backbone, out_onnx, {
        "backbone": training["backbone"], "embedding_size": str(training["embedding_size"]),
        "lineage": meta["lineage"], "weights_lineage": weights_meta.get("lineage", "")})
    log.info("exported %s: largest relative difference to the weights %.2e", out_onnx, difference)
    write_model_card(
        out_card, onnx_name=Path(out_onnx).name, difference=difference, weights_meta=weights_meta,
        history=manifests.read_manifest(history), summary_md=Path(summary_md).read_text(),
        dataset=manifests.read_manifest(dataset, ["identity"]), references_meta=manifests.read_meta(references),
        settings=settings, training=training, lineage=provenance(summary), tiny_root=tiny_root)
    return difference


def write_model_card(out: str | Path, *, onnx_name: str, difference: float, weights_meta: dict,
                     history: pd.DataFrame, summary_md: str, dataset: pd.DataFrame,
                     references_meta: dict, settings: dict, training: dict, lineage: list[str],
                     tiny_root: str) -> str:
    """MODEL_CARD.md: the exported model's interface, training data and recipe, evaluation,
    lineage and licences (the model carries the terms of every model that made its data)."""
    rows = licence_rows(models_used(settings, tiny_root))
    last = history.iloc[-1] if len(history) else None
    loss = "" if last is None else f"; final epoch loss {last['loss']:.4f}"
    t = training
    lines = [
        f"# Model card: {t['backbone']} face recogniser trained on a HyperFace synthetic dataset", "",
        f"`{onnx_name}`: input `{INPUT}` {CONTRACT['input']}; faces aligned as {CONTRACT['alignment']}. "
        f"Output `{OUTPUT}` {CONTRACT['output']}. It loads with "
        "`insightface.model_zoo.get_model(path)` (an ArcFace-type model), or any ONNX runtime; the "
        "contract is also in the file's metadata.", "",
        f"Checked against the trained weights (lineage `{weights_meta.get('lineage', '?')}`) on 8 fixed "
        f"inputs: largest difference {difference:.1e} relative to the largest embedding value.", "",
        "## Training data", "",
        f"{dataset['identity'].nunique():,} synthetic identities, {len(dataset):,} images (`dataset.parquet`):", "",
        *recipe_lines(settings, references_meta), "",
        "## Training recipe", "",
        f"- backbone `{t['backbone']}` (width {t.get('width', 64)}), embedding {t['embedding_size']}, "
        f"head `{t['head']}`",
        f"- {t['epochs']} epochs, batch {t['batch_size']} on {t.get('gpus', 1)} rank(s), SGD lr {t['lr']} momentum "
        f"{t.get('momentum', 0.9)}, milestones {t.get('milestones', [])}, weight decay {t['weight_decay']} "
        "(every parameter but BatchNorm's, as AdaFace)",
        f"- augmentation: flip {t.get('flip_prob', 0.5)}, crop {t.get('crop_prob', 0.0)}, low resolution "
        f"{t.get('low_res_prob', 0.0)}, photometric {t.get('photometric_prob', 0.0)}{loss}", "",
        "## Evaluation", "",
        "insightface's verification protocol: flip-fused normalised embeddings, squared L2 distance, "
        "10 folds, accuracy at the best 0.01-grid threshold of the other folds, VAL at the threshold "
        "interpolated to FAR=1e-3.", "",
        summary_md.rstrip(), "",
        "## Lineage", "",
        "```", *lineage, "```", "",
        "## Licences", "",
        "The model was trained only on the synthetic dataset, which the models below made; it "
        "carries their terms.", "",
        most_restrictive(rows), "",
        licence_table(rows),
        "## Intended use and limits", "",
        "Research on face recognition trained without real faces. Accuracy on real faces is what "
        "the evaluation table says and no more; check demographic performance before any use.", "",
    ]
    text = "\n".join(lines)
    Path(out).write_text(text)
    return text
