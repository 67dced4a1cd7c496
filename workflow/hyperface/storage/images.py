"""Image files, the one pixel convention of the package, and the face template crops follow.

Images travel as RGB uint8 arrays (H, W, 3). Networks trained and evaluated here see
``(rgb / 255 - 0.5) / 0.5`` in NCHW layout, i.e. RGB in [-1, 1]; insightface's ArcFace ONNX sees
the same range after its own BGR conversion (see :mod:`hyperface.recognition.embedders`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

# insightface's arcface_src: eyes, nose tip, mouth corners in a 112x112 aligned crop
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def save_png(image: np.ndarray, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG", compress_level=1)


def load_rgb(path: str | Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def to_network(images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return network_input(
        torch.from_numpy(np.ascontiguousarray(np.stack(images))).permute(0, 3, 1, 2)
    )


def network_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W), on any device -> float in [-1, 1] there (a quarter of the bytes of a
    float batch cross PCIe)."""
    return x.float().div_(127.5).sub_(1.0)
