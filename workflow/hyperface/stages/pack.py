"""Pack stage: HyperFace optimisation of the reference embeddings, resumable."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from hyperface import manifests, packing
from hyperface.runtime import Throughput

log = logging.getLogger(__name__)


def pack(gallery_manifest: str | Path, out_references: str | Path, out_trace: str | Path,
         checkpoint_dir: str | Path, *, seed: int, params: dict, device: str) -> None:
    gallery = manifests.read_embeddings(gallery_manifest)
    section_hash = manifests.config_hash([seed, params])
    # a checkpoint belongs to one config: a changed config starts over instead of resuming
    checkpoint = Path(checkpoint_dir) / f"checkpoint-{section_hash}.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)

    def report(iteration: int, row: dict) -> None:
        log.info("iter %d min_dist %.4f mean_nn %.4f reg %.4f lr %.2g", iteration,
                 row["min_distance"], row["mean_nn_distance"], row["regulariser"], row["lr"])

    speed = Throughput("iterations")
    result = packing.optimize(None, gallery, seed=seed, device=device, checkpoint=checkpoint,
                              progress=report, **params)
    speed.add(result.iterations_run)
    emb = result.embeddings
    dev = packing.resolve_device(device)
    refs = torch.from_numpy(emb).to(dev)
    gcos, gidx = packing.nearest(refs, torch.from_numpy(gallery).to(dev))
    icos, _ = packing.nearest(refs, refs, exclude_self=True)
    manifests.write_manifest(out_references, {
        "identity": np.arange(len(emb)), "embedding": emb, "init_index": result.init_index,
        "nearest_gallery": gidx.cpu().numpy(), "nearest_gallery_cos": gcos.cpu().numpy(),
        "nearest_identity_cos": icos.cpu().numpy()},
        manifests.references_schema(emb.shape[1]),
        {"backends": {"objective": params["objective"], "optimizer": params["optimizer"]},
         "config_hash": section_hash, "iterations_run": result.iterations_run})
    manifests.write_manifest(out_trace, result.trace.to_dict("list"), manifests.trace_schema(),
                             {"config_hash": section_hash})
    final = result.trace.iloc[-1]
    log.info("packed %d identities: min pairwise cosine distance %.4f, mean nearest-neighbour %.4f",
             len(emb), final["min_distance"], final["mean_nn_distance"])
    speed.report()
