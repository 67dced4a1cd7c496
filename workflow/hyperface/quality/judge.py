"""An independent identity judge's models: a face detector (YuNet) and a recogniser (dlib's
ResNet or SFace) from other authors and training sets than the models that made the dataset, each
run as its authors run it (its own detection, alignment and published decision threshold).

Identity consistency measured with the ArcFace that conditions Arc2Face grades the generator on its
own exam; :mod:`hyperface.quality.verdicts` turns this judge's descriptors into the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from hyperface.generators.packaged import packaged_file
from hyperface.loading import WeightsError, require
from hyperface.recognition.alignment import warp_to_template

JUDGES = ("dlib", "sface")
YUNET_SCORE = 0.9  # OpenCV Zoo's YuNet demo default
MAX_SIDE = 640  # YuNet's published input size
NO_FACE = np.full(4, np.nan, np.float32), np.full(10, np.nan, np.float32), 0.0


class YuNetDetector:
    """OpenCV Zoo's YuNet (Apache-2.0): a box, five landmarks (eyes, nose, mouth corners) and a
    score."""

    def __init__(self, weights: str | Path, *, min_score: float = YUNET_SCORE):
        import cv2

        path = packaged_file(require(weights, "YuNet ONNX model"), ".onnx")
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), min_score, 0.3, 5000)
        except cv2.error as err:
            raise WeightsError(f"{path}: cannot load as a YuNet detector ({err})") from err

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The most confident face's (box x0, y0, x1, y1; landmarks; score), NaNs and 0 without one.

        Images are first brought within YuNet's 640 px input: it misses faces much larger than
        those it was trained on (a 1024 px FFHQ-style portrait scores 0.75-0.81 at full size,
        0.92 at 640 px)."""
        import cv2

        scale = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
        if scale < 1.0:
            rgb = cv2.resize(
                rgb,
                (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                interpolation=cv2.INTER_AREA,
            )
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        self.net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.net.detect(bgr)
        if faces is None or not len(faces):
            return NO_FACE
        best = faces[int(np.argmax(faces[:, -1]))]
        x, y, w, h = best[:4] / scale
        return (
            np.array([x, y, x + w, y + h], np.float32),
            (best[4:14] / scale).astype(np.float32),
            float(best[-1]),
        )


class JudgeRecogniser(Protocol):
    metric: str  # "l2" on raw descriptors or "cosine"
    threshold: float  # the published same-person decision point in that metric

    def describe(self, rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


class DlibJudge:
    """dlib's ResNet face recogniser (CC0; 99.38 % on LFW): its own 5-point shape predictor on the
    detector's box, its own 150 px chip; the same person below Euclidean distance 0.6."""

    metric, threshold = "l2", 0.6

    def __init__(self, weights: str | Path):
        import dlib

        folder = require(weights, "dlib model folder")
        try:
            self.shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
            self.model = dlib.face_recognition_model_v1(
                str(folder / "dlib_face_recognition_resnet_model_v1.dat")
            )
        except RuntimeError as err:
            raise WeightsError(
                f"{folder}: cannot load dlib's shape predictor and recogniser ({err})"
            ) from err
        self._dlib = dlib

    # noqa: ARG002
    def describe(self, rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        image = np.ascontiguousarray(rgb)
        return np.asarray(
            self.model.compute_face_descriptor(image, self.shape(image, rect)), np.float32
        )


class SFaceJudge:
    """SFace on a crop aligned by the detector's landmarks; the same person at cosine >= 0.363."""

    metric = "cosine"

    def __init__(self, weights: str | Path):
        from hyperface.recognition.embedders import SFaceEmbedder

        self.model = SFaceEmbedder(weights)
        self.threshold = self.model.threshold

    # noqa: ARG002
    def describe(self, rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.model.features([warp_to_template(rgb, landmarks)])[0]


def load_judge(backend: str, weights: str | Path) -> JudgeRecogniser:
    if backend == "dlib":
        return DlibJudge(weights)
    if backend == "sface":
        return SFaceJudge(weights)
    raise ValueError(f"quality.judge.backend must be one of {JUDGES}, got {backend!r}")


def judge_images(
    images: list[np.ndarray], detector: YuNetDetector, recogniser: JudgeRecogniser | None
) -> tuple[np.ndarray, np.ndarray]:
    """(detector score per image (0: no face), descriptors (NaN rows without a face)); without a
    recogniser, detection only."""
    scores, rows = np.zeros(len(images), np.float32), []
    for i, image in enumerate(images):
        box, landmarks, scores[i] = detector.detect(image)
        if recogniser is not None:
            rows.append(recogniser.describe(image, box, landmarks) if scores[i] > 0 else None)
    dim = next((len(r) for r in rows if r is not None), 128)
    descriptors = (
        np.stack([r if r is not None else np.full(dim, np.nan, np.float32) for r in rows])
        if rows
        else np.zeros((len(images), 0), np.float32)
    )
    return scores, descriptors
