"""Pack stage: HyperFace optimisation of the reference embeddings, resumable."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from hyperface.packing.neighbours import summarise
from hyperface.packing.solver import nearest, optimize
from hyperface.runtime import Throughput
from hyperface.settings import PackingSettings
from hyperface.storage import manifests
from hyperface.storage.lineage import lineage_meta
from hyperface.storage.resume import claim_state

log = logging.getLogger(__name__)


def pack(
    gallery_manifest: str | Path,
    out_references: str | Path,
    out_trace: str | Path,
    checkpoint_dir: str | Path,
    *,
    seed: int,
    packing: PackingSettings,
    device: str,
) -> None:
    """references.parquet (the packed identities) and the packing trace.

    The checkpoint is named by the job's lineage
    (settings + the gallery's lineage + device) and removed once the outputs are written.
    """
    gallery = manifests.read_embeddings(gallery_manifest)
    meta = lineage_meta("pack", [seed, packing], {"gallery": gallery_manifest})
    dev = torch.device(device)
    checkpoint = claim_state(checkpoint_dir, "checkpoint", meta, dev.type)

    speed = Throughput("iterations")
    result = optimize(
        packing, None, gallery, seed=seed, device=device, checkpoint=checkpoint, progress=_report
    )
    speed.add(result.iterations_run)
    emb = result.embeddings
    refs = torch.from_numpy(emb).to(dev)
    gcos, gidx = nearest(refs, torch.from_numpy(gallery).to(dev))
    icos, _ = nearest(refs, refs, exclude_self=True)
    measured = summarise(icos, gcos)  # exact: from the blocked searches above
    manifests.write_manifest(
        out_references,
        {
            "identity": np.arange(len(emb)),
            "embedding": emb,
            "init_index": result.init_index,
            "nearest_gallery": gidx.cpu().numpy(),
            "nearest_gallery_cos": gcos.cpu().numpy(),
            "nearest_identity_cos": icos.cpu().numpy(),
        },
        manifests.references_schema(emb.shape[1]),
        {
            "backends": {"objective": packing.objective, "optimizer": packing.optimizer},
            **meta,
            "quality": measured,
            "iterations_run": result.iterations_run,
        },
    )
    manifests.write_manifest(
        out_trace, result.trace.to_dict("list"), manifests.trace_schema(), meta
    )
    checkpoint.unlink(missing_ok=True)
    _log_packed(len(emb), measured)
    speed.report()


def _report(iteration: int, row: dict) -> None:
    log.info("iter %d min_dist %.4f mean_nn %.4f reg %.4f lr %.2g", iteration, row["min_distance"],
             row["mean_nn_distance"], row["regulariser"], row["lr"])  # fmt: skip


def _log_packed(n: int, measured: dict[str, float]) -> None:
    log.info("packed %d identities: min pairwise cosine distance %.4f, nearest-neighbour distance "
             "1st percentile %.4f, median %.4f, mean distance to the nearest gallery face %.4f", n,
             measured["min_distance"], measured["nn_distance_p01"], measured["nn_distance_median"],
             measured["mean_gallery_distance"])  # fmt: skip
