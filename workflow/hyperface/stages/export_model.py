"""Model export stage: the trained backbone as ONNX, with its model card (interface, training
data and recipe, evaluation, lineage, licences)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hyperface.recognition.onnx_export import CONTRACT, INPUT, OUTPUT, export_onnx
from hyperface.recognition.training import load_backbone
from hyperface.reports.cards import licence_lines, recipe_lines
from hyperface.settings import Settings
from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta, provenance, recorded_meta

log = logging.getLogger(__name__)


def export_model(
    inputs: Mapping[str, str],
    out_onnx: str | Path,
    out_card: str | Path,
    *,
    settings: Settings,
    tiny_root: str,
) -> float:
    """model.onnx (checked against the weights; the difference is returned) and MODEL_CARD.md.

    ``inputs``: the rule's weights, history, summary, summary_md, references and dataset;
    ``settings``: the sections the cards read (:mod:`hyperface.reports.cards`) and training.
    """
    weights, training = inputs["weights"], settings.training
    weights_meta = recorded_meta(Path(weights))
    meta = lineage_meta(
        "export_model", [training], {"model": weights, "summary": inputs["summary"]}
    )
    backbone = load_backbone(weights)
    difference = export_onnx(
        backbone,
        out_onnx,
        {
            "backbone": training.backbone,
            "embedding_size": str(training.embedding_size),
            "lineage": meta["lineage"],
            "weights_lineage": weights_meta.get("lineage", ""),
        },
    )
    log.info("exported %s: largest relative difference to the weights %.2e", out_onnx, difference)
    card = ModelCard(
        onnx_name=Path(out_onnx).name,
        difference=difference,
        weights_meta=weights_meta,
        history=manifests.read_manifest(inputs["history"]),
        summary_md=Path(inputs["summary_md"]).read_text(),
        dataset=manifests.read_manifest(inputs["dataset"], ["identity"]),
        references_meta=manifests.read_meta(inputs["references"]),
        settings=settings,
        lineage=provenance(inputs["summary"]),
        tiny_root=tiny_root,
    )
    Path(out_card).write_text(card.render())
    return difference


LICENCE_PREAMBLE = (
    "The model was trained only on the synthetic dataset, which the models below made; it "
    "carries their terms."
)


@dataclass
class ModelCard:
    """MODEL_CARD.md: the exported model's interface, training data and recipe, evaluation,
    lineage and licences (the model carries the terms of every model that made its data)."""

    onnx_name: str
    difference: float
    weights_meta: dict
    history: pd.DataFrame
    summary_md: str
    dataset: pd.DataFrame
    references_meta: dict
    settings: Settings
    lineage: list[str]
    tiny_root: str

    def render(self) -> str:
        settings, history, dataset = self.settings, self.history, self.dataset
        onnx_name, weights_meta = self.onnx_name, self.weights_meta
        loss = f"; final epoch loss {history.iloc[-1]['loss']:.4f}" if len(history) else ""
        t = settings.training
        lines = [
            f"# Model card: {t.backbone} face recogniser trained on a HyperFace synthetic dataset",
            "",
            f"`{onnx_name}`: input `{INPUT}` {CONTRACT['input']}; faces aligned as "
            f"{CONTRACT['alignment']}. "
            f"Output `{OUTPUT}` {CONTRACT['output']}. It loads with "
            "`insightface.model_zoo.get_model(path)` (an ArcFace-type model), or any ONNX runtime; "
            "the "
            "contract is also in the file's metadata.",
            "",
            f"Checked against the trained weights (lineage `{weights_meta.get('lineage', '?')}`) "
            f"on 8 fixed inputs: largest difference {self.difference:.1e} relative to the largest "
            "embedding value.",
            "",
            "## Training data",
            "",
            f"{dataset['identity'].nunique():,} synthetic identities, {len(dataset):,} images "
            f"(`dataset.parquet`):",
            "",
            *recipe_lines(settings, self.references_meta),
            "",
            *self._recipe_lines(loss),
            "## Evaluation",
            "",
            "insightface's verification protocol: flip-fused normalised embeddings, squared L2 "
            "distance, "
            "10 folds, accuracy at the best 0.01-grid threshold of the other folds, VAL at the "
            "threshold "
            "interpolated to FAR=1e-3.",
            "",
            self.summary_md.rstrip(),
            "",
            "## Lineage",
            "",
            "```",
            *self.lineage,
            "```",
            "",
            *licence_lines(settings, self.tiny_root, LICENCE_PREAMBLE),
            "## Intended use and limits",
            "",
            "Research on face recognition trained without real faces. Accuracy on real faces is "
            "what the evaluation table says and no more; check demographic performance before any "
            "use.",
            "",
        ]
        return "\n".join(lines)

    def _recipe_lines(self, loss: str) -> list[str]:
        """The training recipe, from the training settings (``loss``: the final epoch's)."""
        t = self.settings.training
        return [
            "## Training recipe",
            "",
            f"- backbone `{t.backbone}` (width {t.width}), embedding {t.embedding_size}, "
            f"head `{t.head}`",
            f"- {t.epochs} epochs, batch {t.batch_size} on {t.gpus} rank(s), SGD lr {t.lr} "
            f"momentum "
            f"{t.momentum}, milestones {list(t.milestones)}, weight decay {t.weight_decay} "
            "(every parameter but BatchNorm's, as AdaFace)",
            f"- augmentation: flip {t.flip_prob}, crop {t.crop_prob}, low resolution "
            f"{t.low_res_prob}, photometric {t.photometric_prob}{loss}",
            "",
        ]
