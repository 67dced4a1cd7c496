"""Margin heads for training on identity labels: AdaFace (default), ArcFace, CosFace.

AdaFace (Kim et al., CVPR 2022): the feature norm, normalised by an EMA of its batch mean and std,
sets how much of the angular and of the additive margin a sample gets; it is a constant to the
gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hyperface.recognition.distributed import batch_mean_std

HEADS = ("adaface", "arcface", "cosface")


class MarginHead(nn.Module):
    """Class centres on the sphere; subclasses turn cosines into margin-adjusted logits.

    Centres start as AdaFace's do: uniform(-1, 1) columns scaled to unit norm. Logits use the
    normalised centres, so an un-normalised start (column norm about sqrt(d / 3), 13 at d = 512)
    would shrink every centre's angular step by the square of that norm.
    """

    def __init__(self, embedding_size: int, n_classes: int, s: float = 64.0, m: float = 0.4):
        super().__init__()
        start = nn.functional.normalize(
            torch.empty(embedding_size, n_classes).uniform_(-1, 1), dim=0
        )
        self.kernel = nn.Parameter(start)
        self.s, self.m, self.eps = s, m, 1e-3
        # the class of each kernel column (a PartialFC rank holds a block of them), and the columns
        # scored by the next forward (None: all)
        self.register_buffer("class_ids", torch.arange(n_classes), persistent=False)
        self.columns: torch.Tensor | None = None

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel if self.columns is None else self.kernel[:, self.columns]
        return (embeddings @ nn.functional.normalize(kernel, dim=0)).clamp(
            -1 + self.eps, 1 - self.eps
        )

    def one_hot(self, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """1 where a column is the sample's class (no 1 in a row whose class is not scored here)."""
        ids = self.class_ids if self.columns is None else self.class_ids[self.columns]
        return (labels.reshape(-1, 1) == ids.reshape(1, -1)).to(cosine.dtype)


class AdaFace(MarginHead):
    def __init__(
        self,
        embedding_size: int,
        n_classes: int,
        m: float = 0.4,
        h: float = 0.333,
        s: float = 64.0,
        t_alpha: float = 0.01,
    ):
        super().__init__(embedding_size, n_classes, s=s, m=m)
        self.h, self.t_alpha = h, t_alpha
        self.register_buffer("batch_mean", torch.ones(1) * 20)
        self.register_buffer("batch_std", torch.ones(1) * 100)
        self.stats_over_ranks = (
            True  # False when the batch it sees is already every rank's (PartialFC)
        )

    def forward(
        self, embeddings: torch.Tensor, norms: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        cosine = self.cosine(embeddings)
        safe_norms = norms.clamp(0.001, 100).detach()
        if self.training:
            with torch.no_grad():  # over the whole batch, all ranks' parts of it included
                mean, std = batch_mean_std(safe_norms, over_ranks=self.stats_over_ranks)
                self.batch_mean.mul_(1 - self.t_alpha).add_(self.t_alpha * mean)
                self.batch_std.mul_(1 - self.t_alpha).add_(self.t_alpha * std)
        scaler = ((safe_norms - self.batch_mean) / (self.batch_std + self.eps) * self.h).clip(-1, 1)
        target = self.one_hot(cosine, labels)
        theta = cosine.acos() + target * (-self.m * scaler)  # angular margin g_angle = -m * scaler
        cosine = theta.clip(self.eps, math.pi - self.eps).cos()
        cosine = cosine - target * (
            self.m + self.m * scaler
        )  # additive margin g_add = m * scaler + m
        return cosine * self.s


class ArcFace(MarginHead):
    def __init__(self, embedding_size: int, n_classes: int, m: float = 0.5, s: float = 64.0):
        super().__init__(embedding_size, n_classes, s=s, m=m)

    def forward(
        self, embeddings: torch.Tensor, norms: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:  # noqa: ARG002
        cosine = self.cosine(embeddings)
        theta = cosine.acos() + self.one_hot(cosine, labels) * self.m
        return theta.clip(self.eps, math.pi - self.eps).cos() * self.s


class CosFace(MarginHead):
    def __init__(self, embedding_size: int, n_classes: int, m: float = 0.35, s: float = 64.0):
        super().__init__(embedding_size, n_classes, s=s, m=m)

    def forward(
        self, embeddings: torch.Tensor, norms: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:  # noqa: ARG002
        cosine = self.cosine(embeddings)
        return (cosine - self.one_hot(cosine, labels) * self.m) * self.s


def build_head(name: str, embedding_size: int, n_classes: int, **kwargs: float) -> MarginHead:
    heads = {"adaface": AdaFace, "arcface": ArcFace, "cosface": CosFace}
    if name not in heads:
        raise ValueError(f"training.head must be one of {HEADS}, got {name!r}")
    return heads[name](embedding_size, n_classes, **kwargs)


def diversity_loss(cosine: torch.Tensor, labels: torch.Tensor, s: float) -> torch.Tensor:
    """Diversity term of "Emphasizing closeness and diversity simultaneously" (our reading of Eq.
    7).

    log of the mean over samples and non-target class centres of exp(T * cos^2), with the
    truncated scale T = s where cos > 0 and 0 otherwise: samples are pushed away from the centres
    of other classes, the harder the closer they are, and not at all past 90 degrees.
    """
    mask = torch.ones_like(cosine, dtype=torch.bool).scatter_(1, labels.reshape(-1, 1), False)
    z = torch.where(cosine > 0, s * cosine.square(), torch.zeros_like(cosine))[mask]
    return torch.logsumexp(z, dim=0) - torch.log(torch.tensor(float(z.numel()), device=z.device))
