"""Attribute directions in a generator's latent space, fitted from the faces it drew.

A linear direction in StyleGAN's w that turns the head is the ridge regression of the faces'
yaw (measured from their landmarks) on their w: moving w by ``step`` changes the predicted yaw
by one degree. It is fitted by the workflow from the gallery it drew, so it follows the weights
and the truncation the run uses instead of being a number shipped with the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOLDS = 5
RIDGE = 1.0  # in units of the latents' mean variance per dimension times the face count


@dataclass(frozen=True)
class Direction:
    step: np.ndarray  # (d,) change of w that moves the predicted attribute by one unit
    heldout_r: float  # correlation of predicted and measured values on held-out faces
    faces: int  # faces it was fitted on
    spread: float  # standard deviation of the attribute over those faces

    def as_dict(self) -> dict:
        return {"step": self.step.astype(float).tolist(), "heldout_r": self.heldout_r,
                "faces": self.faces, "spread": self.spread}  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict) -> Direction:
        return cls(np.asarray(values["step"], np.float32), float(values["heldout_r"]),
                   int(values["faces"]), float(values["spread"]))  # fmt: skip


def _ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of a ridge regression of y on x (centred; the penalty scaled
    to the data, so it means the same for 50 faces and 5,000)."""
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    lam = RIDGE * float((xc**2).mean()) * len(x)
    # the dual form: n x n instead of d x d, as a gallery is often smaller than w's 512 dims
    alpha = np.linalg.solve(xc @ xc.T + lam * np.eye(len(x)), y - my)
    beta = xc.T @ alpha
    return beta, float(my - mx @ beta)


def fit_direction(latents: np.ndarray, values: np.ndarray) -> Direction:
    """The direction of ``values`` (an attribute per face, NaN where it was not measured) in
    ``latents`` (n, d), with its held-out correlation from ``FOLDS``-fold cross-validation."""
    keep = np.isfinite(values)
    x, y = np.asarray(latents, np.float64)[keep], np.asarray(values, np.float64)[keep]
    if len(y) < 2 * FOLDS:
        raise ValueError(
            f"a direction needs at least {2 * FOLDS} faces with landmarks, got {len(y)}"
        )
    folds = np.arange(len(y)) % FOLDS
    predicted = np.empty_like(y)
    for f in range(FOLDS):
        beta, b0 = _ridge(x[folds != f], y[folds != f])
        predicted[folds == f] = x[folds == f] @ beta + b0
    beta, _ = _ridge(x, y)
    unit = beta / np.linalg.norm(beta)
    # the ridge fixes the direction; how far along it one unit lies is the least-squares slope of
    # the attribute on the faces' position along it (the penalty would shrink it)
    along = (x - x.mean(0)) @ unit
    step = unit * float(along @ along) / float(along @ (y - y.mean()))
    r = float(np.corrcoef(predicted, y)[0, 1])
    return Direction(step.astype(np.float32), r, len(y), float(y.std()))
