"""Judge stage: the independent detector and recogniser's verdict on the dataset and the gallery.

Reads the aligned shards one at a time (the crops the recogniser will be trained on) and the
gallery shards (the unconditional faces); judges an evenly spaced sample of ``sample`` identities
and ``sample`` gallery faces, so its cost does not grow with the dataset (dlib's recogniser runs
about 13 faces a second on one CPU core).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hyperface.quality.judge import YuNetDetector, judge_images, load_judge
from hyperface.quality.verdicts import identity_verdicts, impostors_accepted, spread
from hyperface.runtime import progress
from hyperface.settings import JudgeSettings
from hyperface.storage import manifests
from hyperface.storage.containers import Container, load_shards
from hyperface.storage.lineage import lineage_meta


def evenly_spaced(values: np.ndarray, count: int) -> np.ndarray:
    """``count`` of the sorted unique ``values`` spread evenly from first to last (all when
    fewer)."""
    unique = np.unique(values)
    if len(unique) <= count:
        return unique
    return unique[np.linspace(0, len(unique) - 1, count).round().astype(int)]


def _images(shard: str | Path, rows: np.ndarray) -> list[np.ndarray]:
    """The rows' images, reading only the row groups that hold them (a judged sample of 1,000
    identities out of 50k touches a fiftieth of the bytes)."""
    return Container(shard).images(rows.tolist())


def judge(
    aligned: list[str | Path],
    gallery_shards: list[str | Path],
    references: str | Path,
    root: str | Path,
    out: Mapping[str, str | Path],
    *,
    settings: JudgeSettings,
) -> None:
    """Write the judge's per-image, per-identity, gallery and spread manifests (``out``: their
    paths by those names).

    ``settings``: the ``quality.judge`` section (backend, weights, detector, min_face_score,
    sample).
    """
    detector = YuNetDetector(settings.detector, min_score=settings.min_face_score)
    recogniser = load_judge(settings.backend, settings.weights)
    inputs = {"aligned": aligned, "gallery": gallery_shards, "references": references,
              "weights": settings.weights, "detector": settings.detector}  # fmt: skip
    meta = lineage_meta("judge", [settings], inputs)
    frame = load_shards(aligned, ["identity", "sample", "has_image", "container", "row"], root)
    chosen = evenly_spaced(frame["identity"].to_numpy(), settings.sample)
    frame = frame[frame["identity"].isin(chosen) & frame["has_image"]]
    parts, descriptors = [], []
    for container, rows in progress(
        list(frame.groupby("container", sort=False)), desc="judged shards"
    ):
        scores, desc = judge_images(
            _images(Path(root) / container, rows["row"].to_numpy()), detector, recogniser
        )
        parts.append(rows[["identity", "sample", "container", "row"]].assign(face_score=scores))
        descriptors.append(desc)
    images = pd.concat(parts, ignore_index=True)
    desc = np.concatenate(descriptors)
    metric, threshold = recogniser.metric, recogniser.threshold
    identities = identity_verdicts(images["identity"].to_numpy(), desc, metric, threshold)
    faces = images.groupby("identity")["face_score"].agg(
        images="size", detected=lambda s: int((s > 0).sum())
    )
    identities = faces.reset_index().merge(identities, on="identity")
    verdict = {"backend": settings.backend, "metric": metric, "threshold": threshold,
               "impostors_accepted": impostors_accepted(images["identity"].to_numpy(), desc,
                                                        metric, threshold)}  # fmt: skip
    meta = {**meta, "judge": verdict}
    manifests.write_frame(out["images"], images, manifests.judge_images_schema(), meta)
    manifests.write_frame(out["identities"], identities, manifests.judge_identities_schema(), meta)

    starts = manifests.read_table(references, ["identity", "init_index"]).to_pandas()
    gallery, gallery_desc = judge_gallery(
        gallery_shards, root, settings.sample, detector, recogniser,
        also=starts.loc[starts["identity"].isin(chosen), "init_index"].to_numpy(),
    )  # fmt: skip
    manifests.write_frame(out["gallery"], gallery, manifests.judge_gallery_schema(), meta)
    table = spread_table(images, desc, gallery, gallery_desc, starts, chosen, metric, threshold)
    manifests.write_frame(out["spread"], table, manifests.judge_spread_schema(), meta)


SPREAD_SETS = {
    "random": "random draws (gallery faces packing did not start from)",
    "starts": "gallery faces packing started from",
    "realised": "identities realised from the packed references (first image)",
}


def spread_table(
    images: pd.DataFrame,
    desc: np.ndarray,
    gallery: pd.DataFrame,
    gallery_desc: np.ndarray,
    starts: pd.DataFrame,
    chosen: np.ndarray,
    metric: str,
    threshold: float,
) -> pd.DataFrame:
    """What packing bought, for the judge: one face per person from three sets of the same size -
    random draws of the gallery's generator, the gallery faces packing started from, and each
    judged identity's first image with a face."""
    found = images["face_score"].to_numpy() > 0
    first = images[found].sort_values(["identity", "sample"]).drop_duplicates("identity")
    realised = desc[first.index.to_numpy()]
    init = starts.set_index("identity").loc[chosen, "init_index"].to_numpy()
    in_starts = gallery["index"].isin(init).to_numpy()
    in_any_start = gallery["index"].isin(starts["init_index"]).to_numpy()
    random = gallery_desc[~in_any_start][: len(chosen)]
    sets = {"random": random, "starts": gallery_desc[in_starts], "realised": realised}
    rows = [{"set": name, "description": SPREAD_SETS[name], **spread(d, metric, threshold)}
            for name, d in sets.items() if len(d)]  # fmt: skip
    return pd.DataFrame(rows)


def judge_gallery(
    shards: list[str | Path],
    root: str | Path,
    sample: int,
    detector: YuNetDetector,
    recogniser,
    also: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The detector's score and the recogniser's descriptor for an evenly spaced ``sample`` of
    the gallery's faces and the faces ``also`` (gallery indices)."""
    gallery = pd.concat(
        [manifests.read_table(s, ["index", "face_prob"]).to_pandas()
         .assign(container=str(Path(s).relative_to(root)), row=lambda f: np.arange(len(f)))
         for s in shards], ignore_index=True)  # fmt: skip
    picked = evenly_spaced(gallery["index"].to_numpy(), sample)
    gallery = gallery[gallery["index"].isin(picked) | gallery["index"].isin(also)]
    scores, descriptors = [], []
    for c, g in gallery.groupby("container", sort=False):
        score, desc = judge_images(_images(Path(root) / c, g["row"].to_numpy()), detector,
                                   recogniser)  # fmt: skip
        scores.append(score)
        descriptors.append(desc)
    if not scores:
        return gallery.assign(face_score=np.zeros(0, np.float32)), np.zeros((0, 128), np.float32)
    return gallery.assign(face_score=np.concatenate(scores)), np.concatenate(descriptors)
