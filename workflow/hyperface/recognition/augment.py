"""Training augmentations in AdaFace's style, on aligned RGB uint8 crops.

Each is applied with its own probability; randomness comes from a generator the caller seeds per
(seed, epoch, image), so an epoch's augmented images are the same after a resume.

- crop: keep a random-resized-crop box (scale 0.2-1, ratio 3/4-4/3) in place, black elsewhere, so
  the face stays aligned with the template;
- low resolution: downscale to 20-100 % with a random interpolation and scale back;
- photometric: brightness, contrast and saturation factors in [0.5, 1.5], in random order;
- horizontal flip.
"""

from __future__ import annotations

import cv2
import numpy as np

INTERPOLATIONS = (
    cv2.INTER_NEAREST,
    cv2.INTER_LINEAR,
    cv2.INTER_AREA,
    cv2.INTER_CUBIC,
    cv2.INTER_LANCZOS4,
)


def crop_in_place(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(0.2, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            out = np.zeros_like(img)
            out[top : top + ch, left : left + cw] = img[top : top + ch, left : left + cw]
            return out
    return img


def low_resolution(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    side = max(2, int(round(min(h, w) * rng.uniform(0.2, 1.0))))
    down = cv2.resize(
        img, (side, side), interpolation=INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))]
    )
    return cv2.resize(down, (w, h), interpolation=INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))])


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    for op in rng.permutation(3):
        f = rng.uniform(0.5, 1.5)
        gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
        if op == 0:
            x = x * f
        elif op == 1:
            x = (x - gray.mean()) * f + gray.mean()
        else:
            x = (x - gray[..., None]) * f + gray[..., None]
        x = np.clip(x, 0, 255)
    return x.round().astype(np.uint8)


def augment(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    flip_prob: float = 0.5,
    crop_prob: float = 0.0,
    low_res_prob: float = 0.0,
    photometric_prob: float = 0.0,
) -> np.ndarray:
    if rng.random() < crop_prob:
        img = crop_in_place(img, rng)
    if rng.random() < low_res_prob:
        img = low_resolution(img, rng)
    if rng.random() < photometric_prob:
        img = photometric(img, rng)
    if rng.random() < flip_prob:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)
