"""A trained model on photos of real people: does what it learnt from synthetic faces carry over?

The synthetic holdout benchmark measures the model on the generator's own faces. A folder of real
photos, named ``<person><anything>.<ext>`` (face_recognition's test images: obama.jpg, obama2.jpg,
biden.jpg, ...; names that do not start with a letter are skipped), gives every pair of the same
person (genuine) and of two people (impostor). With a handful of photos there are too few pairs
for insightface's 10-fold protocol, so the figures are the ranking ones: the share of
(genuine, impostor) pair pairs the model ranks right (ROC AUC) and the mean cosines.

    python -m hyperface.quality.real_photos --model results/train/model.safetensors \\
        --photos .venv/share/face-photos
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperface.generators.gallery import list_images, read_rgb
from hyperface.recognition.alignment import Aligner
from hyperface.recognition.evaluation import Features, flip_fused

PERSON = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class PhotoVerdict:
    photos: int  # photos with a face, of people with at least one genuine or impostor pair
    people: int
    genuine: np.ndarray  # cosine of each genuine pair
    impostor: np.ndarray  # cosine of each impostor pair

    @property
    def auc(self) -> float:
        """Share of (genuine, impostor) pairs of pairs where the genuine pair is more similar."""
        diff = self.genuine[:, None] - self.impostor[None, :]
        return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def installed_photos() -> Path:
    """The photos ``make`` unpacks into the checkout's .venv, or ``$HYPERFACE_FACE_PHOTOS``."""
    checkout = Path(__file__).resolve().parents[3]
    return Path(os.environ.get("HYPERFACE_FACE_PHOTOS", checkout / ".venv/share/face-photos"))


def person_photos(folder: str | Path) -> list[tuple[str, Path]]:
    """(person, file) for every photo whose name starts with a person's name."""
    found = []
    for path in list_images(folder):
        match = PERSON.match(path.stem)
        if match:
            found.append((match.group(0).lower(), path))
    return found


def aligned_photos(folder: str | Path) -> tuple[list[str], np.ndarray]:
    """Each photo's person and its MTCNN crop on the ArcFace template (photos MTCNN finds no
    confident face in are left out)."""
    aligner = Aligner(min_face_prob=0.9, fallback="drop")
    people, crops = [], []
    for person, path in person_photos(folder):
        face = aligner.align([read_rgb(path)])[0]
        if face.status == "ok":
            people.append(person)
            crops.append(face.crop)
    return people, np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)


def judge_photos(features: Features, people: list[str], crops: np.ndarray) -> PhotoVerdict:
    """Every genuine and impostor pair's cosine, with flip-fused embeddings as in evaluation."""
    emb = flip_fused(features, crops)
    genuine, impostor = [], []
    for a, b in itertools.combinations(range(len(people)), 2):
        (genuine if people[a] == people[b] else impostor).append(float(emb[a] @ emb[b]))
    return PhotoVerdict(len(people), len(set(people)), np.array(genuine), np.array(impostor))


def table(verdicts: dict[str, PhotoVerdict]) -> str:
    """One row per model: photos, pairs, mean genuine and impostor cosine, AUC - to two decimals,
    what a handful of pairs can tell (a model retrained with another seed moves its row by
    about 0.05)."""
    head = ("| model | photos (people) | genuine pairs | impostor pairs | mean genuine cosine | "
            "mean impostor cosine | AUC |\n|---|---:|---:|---:|---:|---:|---:|\n")  # fmt: skip
    return head + "".join(
        f"| {name} | {v.photos} ({v.people}) | {len(v.genuine)} | {len(v.impostor)} | "
        f"{v.genuine.mean():.2f} | {v.impostor.mean():.2f} | {v.auc:.2f} |\n"
        for name, v in verdicts.items()
    )


def main(argv: list[str] | None = None) -> int:
    from hyperface.stages.evaluate import recogniser_features

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", required=True, help="trained .safetensors or .onnx")
    ap.add_argument("--photos", required=True, help="folder of <person>*.jpg photos")
    args = ap.parse_args(argv)
    people, crops = aligned_photos(args.photos)
    verdicts = {
        Path(m).name: judge_photos(
            recogniser_features(m, batch_size=64, device="cpu"), people, crops
        )  # fmt: skip
        for m in args.model
    }
    print(table(verdicts), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
