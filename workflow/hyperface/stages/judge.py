"""Judge stage: the independent detector and recogniser's verdict on the dataset and the gallery.

Reads the aligned shards one at a time (the crops the recogniser will be trained on) and the
gallery shards (the unconditional faces); judges an evenly spaced sample of ``sample`` identities
and ``sample`` gallery faces, so its cost does not grow with the dataset (dlib's recogniser runs
about 13 faces a second on one CPU core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hyperface.quality.judge import YuNetDetector, judge_images, load_judge
from hyperface.quality.verdicts import identity_verdicts
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
    root: str | Path,
    *,
    out_images: str | Path,
    out_identities: str | Path,
    out_gallery: str | Path,
    settings: JudgeSettings,
) -> None:
    """Write the judge's per-image, per-identity and gallery manifests.

    ``settings``: the ``quality.judge`` section (backend, weights, detector, min_face_score,
    sample).
    """
    detector = YuNetDetector(settings.detector, min_score=settings.min_face_score)
    recogniser = load_judge(settings.backend, settings.weights)
    inputs = {"aligned": aligned, "gallery": gallery_shards, "weights": settings.weights,
              "detector": settings.detector}  # fmt: skip
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
    identities = identity_verdicts(
        images["identity"].to_numpy(), desc, recogniser.metric, recogniser.threshold
    )
    faces = images.groupby("identity")["face_score"].agg(
        images="size", detected=lambda s: int((s > 0).sum())
    )
    identities = faces.reset_index().merge(identities, on="identity")
    verdict = {"backend": settings.backend, "metric": recogniser.metric,
               "threshold": recogniser.threshold}  # fmt: skip
    meta = {**meta, "judge": verdict}
    manifests.write_frame(out_images, images, manifests.judge_images_schema(), meta)
    manifests.write_frame(out_identities, identities, manifests.judge_identities_schema(), meta)

    gallery = judge_gallery(gallery_shards, root, settings.sample, detector)
    manifests.write_frame(out_gallery, gallery, manifests.judge_gallery_schema(), meta)


def judge_gallery(
    shards: list[str | Path], root: str | Path, sample: int, detector: YuNetDetector
) -> pd.DataFrame:
    """The detector's score for an evenly spaced ``sample`` of the gallery's faces."""  # fmt: skip
    gallery = pd.concat(
        [manifests.read_table(s, ["index", "face_prob"]).to_pandas()
         .assign(container=str(Path(s).relative_to(root)), row=lambda f: np.arange(len(f)))
         for s in shards], ignore_index=True)  # fmt: skip
    gallery = gallery[gallery["index"].isin(evenly_spaced(gallery["index"].to_numpy(), sample))]
    scores = [judge_images(_images(Path(root) / c, g["row"].to_numpy()), detector, None)[0]
              for c, g in gallery.groupby("container", sort=False)]  # fmt: skip
    return gallery.assign(face_score=np.concatenate(scores) if scores else np.zeros(0, np.float32))
