"""Face alignment: MTCNN's five landmarks -> similarity transform -> the ArcFace 112x112 template.

Every image gets a status: ``ok`` (the face nearest the centre among those with probability at
least ``min_face_prob``), ``low_prob`` (only doubtful detections: the likeliest is kept, flagged) or
``no_face``.
Images without a usable face are never an error; with ``fallback='center_crop'`` they still get a
crop (the centre square, resized), which suits generators whose output is already face-centred.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hyperface.storage.images import ARCFACE_TEMPLATE

FALLBACKS = ("center_crop", "drop")
# MTCNN's image pyramid starts where the smallest face it looks for is 12 px; faces smaller than
# this share of the shorter side are not searched for (at least 20 px, its usual floor). Generated
# and gallery faces fill a large part of their frame: at 512 px, 5 pyramid scales instead of 10,
# and the largest (costliest) scale a 61 px image instead of 307 px.
MIN_FACE_SHARE = 0.2
MIN_FACE_PX = 20


@dataclass
class Alignment:
    crop: np.ndarray | None  # (size, size, 3) uint8 RGB, None when dropped
    status: str
    prob: float
    box: np.ndarray  # (4,) x1 y1 x2 y2, NaN without a face
    landmarks: np.ndarray  # (10,) x,y of 5 points, NaN without a face


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991) mapping points ``src`` onto ``dst``; a 2x3 matrix."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / s0.var(0).sum()
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def warp_to_template(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    matrix = similarity_transform(
        np.asarray(landmarks).reshape(5, 2), ARCFACE_TEMPLATE * size / 112
    )
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


def center_crop(image: np.ndarray, size: int = 112) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(
        image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
    )


def pick_face(boxes: np.ndarray, shape: tuple[int, ...]) -> int:
    """The face nearest the image centre; the largest on a tie."""
    centre = np.array([shape[1] / 2, shape[0] / 2])
    mid = (boxes[:, :2] + boxes[:, 2:4]) / 2
    dist = np.round(np.linalg.norm(mid - centre, axis=1), 3)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return int(np.lexsort((-area, dist))[0])


class Aligner:
    """MTCNN (facenet-pytorch, weights shipped in its wheel) + ArcFace-template warping."""

    def __init__(
        self,
        *,
        size: int = 112,
        min_face_prob: float = 0.9,
        fallback: str = "center_crop",
        device: str = "cpu",
        min_face_share: float = MIN_FACE_SHARE,
    ):
        if fallback not in FALLBACKS:
            raise ValueError(f"alignment.fallback must be one of {FALLBACKS}, got {fallback!r}")
        self.size, self.min_face_prob, self.fallback = size, min_face_prob, fallback
        self.device, self.min_face_share = device, min_face_share
        self._detectors: dict[int, object] = {}

    def mtcnn(self, shape: tuple[int, ...]):
        """The detector for images of ``shape``: its smallest face scales with the image."""
        from facenet_pytorch import MTCNN

        px = max(MIN_FACE_PX, round(self.min_face_share * min(shape[:2])))
        if px not in self._detectors:
            self._detectors[px] = MTCNN(keep_all=True, device=self.device, min_face_size=px)
        return self._detectors[px]

    def detect(
        self, images: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """(boxes, probs, landmarks) per image, as float arrays; None where no face was found."""
        same_size = len({im.shape for im in images}) == 1
        batches = [images] if same_size else [[im] for im in images]
        found = []
        for batch in batches:
            detector = self.mtcnn(batch[0].shape)
            boxes, probs, points = detector.detect(np.stack(batch), landmarks=True)
            for b, p, pt in zip(boxes, probs, points, strict=True):
                # numpy 2 gives object arrays (None where nothing was found): cast explicitly
                if b is None or len(b) == 0:
                    found.append(None)
                else:
                    found.append(
                        (
                            np.asarray(b, np.float64).reshape(-1, 4),
                            np.asarray(p, np.float64).reshape(-1),
                            np.asarray(pt, np.float64).reshape(-1, 5, 2),
                        )
                    )
        return found

    def align(self, images: list[np.ndarray]) -> list[Alignment]:
        results = []
        for image, det in zip(images, self.detect(images), strict=True):
            nan4, nan10 = np.full(4, np.nan, np.float32), np.full(10, np.nan, np.float32)
            if det is None:
                crop = center_crop(image, self.size) if self.fallback == "center_crop" else None
                results.append(Alignment(crop, "no_face", 0.0, nan4, nan10))
                continue
            boxes, probs, points = det
            confident = np.flatnonzero(probs >= self.min_face_prob)
            if len(confident):  # the confident face nearest the centre
                k = int(confident[pick_face(boxes[confident], image.shape)])
                status = "ok"
            else:  # only doubtful detections: keep the likeliest, flagged
                k, status = int(np.argmax(probs)), "low_prob"
            crop = warp_to_template(image, points[k], self.size)
            results.append(
                Alignment(
                    crop,
                    status,
                    float(probs[k]),
                    boxes[k].astype(np.float32),
                    points[k].reshape(-1).astype(np.float32),
                )
            )
        return results
