"""Decision thresholds measured on the faces at hand, not taken from a paper.

Published thresholds are set on photos of real people; on random faces of one generator they are
loose (the README shows the share of the demo gallery's pairs SFace's 0.363 calls the same
person). Every gallery face is a different person, so the gallery's pairs are impostor pairs: the
threshold that accepts a share ``far`` of them is that recogniser's threshold for these faces.
"""

from __future__ import annotations

import numpy as np

MAX_FACES = 2000  # about 2M pairs, all of them: a fixed cost whatever the gallery's size


def impostor_threshold(embeddings: np.ndarray, far: float) -> tuple[float, int]:
    """The cosine similarity above which a share ``far`` of pairs of different faces lie, and
    how many pairs it was measured on (of at most ``MAX_FACES`` faces, evenly spaced)."""
    emb = np.asarray(embeddings, np.float64)
    emb = emb[np.isfinite(emb).all(1)]
    if len(emb) > MAX_FACES:
        emb = emb[np.linspace(0, len(emb) - 1, MAX_FACES).round().astype(int)]
    if len(emb) < 2:
        raise ValueError(f"an impostor threshold needs two faces or more, got {len(emb)}")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = (emb @ emb.T)[np.triu_indices(len(emb), 1)]
    return float(np.quantile(cos, 1.0 - far)), len(cos)
