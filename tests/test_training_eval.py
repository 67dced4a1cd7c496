"""AdaFace and friends, iResNet shapes, the 10-fold protocol and .bin files."""

import math
import pickle

import numpy as np
import pytest
import torch

from hyperface import evaluation
from hyperface.heads import AdaFace, build_head
from hyperface.iresnet import build_backbone


def test_adaface_logits_match_hand_computation():
    head = AdaFace(2, 2, m=0.4, h=0.333, s=64.0, t_alpha=0.01)
    with torch.no_grad():
        head.kernel.copy_(torch.eye(2))
    a, b = math.radians(30), math.radians(80)
    emb = torch.tensor([[math.cos(a), math.sin(a)], [math.cos(b), math.sin(b)]])
    norms = torch.tensor([[10.0], [30.0]])
    labels = torch.tensor([0, 1])
    logits = head(emb, norms, labels)
    # by hand: EMA of batch mean/std from (20, 100) with t_alpha = 0.01
    mean = 0.99 * 20 + 0.01 * 20.0            # batch mean of (10, 30) is 20
    std = 0.99 * 100 + 0.01 * math.sqrt(200)  # unbiased std of (10, 30)
    expected = np.zeros((2, 2))
    for i, (angle, norm, label) in enumerate([(a, 10.0, 0), (b, 30.0, 1)]):
        scaler = max(-1.0, min(1.0, (norm - mean) / (std + 1e-3) * 0.333))
        cos = [math.cos(angle), math.sin(angle)]  # cosine to class 0 and class 1
        for j in range(2):
            c = min(max(cos[j], -1 + 1e-3), 1 - 1e-3)
            if j == label:
                theta = math.acos(c) - 0.4 * scaler
                c = math.cos(min(max(theta, 1e-3), math.pi - 1e-3)) - (0.4 + 0.4 * scaler)
            expected[i, j] = 64 * c
    np.testing.assert_allclose(logits.detach().numpy(), expected, rtol=1e-5, atol=1e-4)
    assert float(head.batch_mean) == pytest.approx(mean)
    assert float(head.batch_std) == pytest.approx(std, rel=1e-6)


@pytest.mark.parametrize("name", ["arcface", "cosface"])
def test_other_heads_penalise_the_target(name):
    head = build_head(name, 4, 3)
    emb = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    labels = torch.tensor([0, 1, 2, 0, 1])
    plain = head.cosine(emb) * head.s
    logits = head(emb, torch.ones(5, 1), labels)
    rows = torch.arange(5)
    assert torch.all(logits[rows, labels] < plain[rows, labels])


def test_iresnet_returns_unit_embedding_and_norm():
    model = build_backbone("iresnet18", width=4, embedding_size=32).eval()
    emb, norm = model(torch.randn(2, 3, 112, 112))
    assert emb.shape == (2, 32) and norm.shape == (2, 1)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))


def test_ten_fold_on_a_separable_case():
    rng = np.random.default_rng(0)
    same = np.array([True, False] * 50)
    sim = np.where(same, rng.uniform(0.6, 1.0, 100), rng.uniform(-1.0, 0.4, 100))
    result = evaluation.ten_fold(sim, same)
    assert result.accuracy == 1.0
    assert np.all((result.fold_threshold >= 0.4) & (result.fold_threshold < 0.6))
    assert result.tar_at_far == 1.0


def test_ten_fold_known_mistakes():
    # 20 pairs; two genuine pairs score below every impostor: whatever the threshold, those two
    # are wrong, and the best threshold on the other folds gets everything else right
    same = np.array([True] * 10 + [False] * 10)
    sim = np.concatenate([np.linspace(0.6, 0.9, 10), np.linspace(-0.5, 0.2, 10)])
    sim[[0, 1]] = -0.9
    order = np.random.default_rng(1).permutation(20)
    result = evaluation.ten_fold(sim[order], same[order])
    assert result.accuracy == pytest.approx(18 / 20)


def test_bin_round_trip(tmp_path):
    images = [np.full((112, 112, 3), v, np.uint8) for v in (0, 50, 100, 150, 200, 250)]
    path = tmp_path / "x.bin"
    evaluation.write_bin(path, images, [True, False, True])
    bins, issame = evaluation.read_bin(path)
    assert issame.tolist() == [True, False, True]
    decoded = evaluation.decode_images(bins)
    assert np.abs(decoded.astype(int) - np.stack(images)).max() <= 2


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_bin_is_rejected(tmp_path):
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(([b"x", b"y"], [_Evil()])))
    with pytest.raises(evaluation.BinFormatError, match="refusing to load builtins.print"):
        evaluation.read_bin(path)


def test_bin_structure_is_checked(tmp_path):
    path = tmp_path / "odd.bin"
    path.write_bytes(pickle.dumps(([b"x"], [True])))
    with pytest.raises(evaluation.BinFormatError, match="2 per pair"):
        evaluation.read_bin(path)


def test_holdout_pairs_are_balanced_and_valid():
    ident = np.repeat(np.arange(5), 4)
    pairs, same = evaluation.holdout_pairs(ident, np.random.default_rng(0))
    assert same.sum() == 5 * 6 and (~same).sum() == 5 * 6
    assert np.all((ident[pairs[:, 0]] == ident[pairs[:, 1]]) == same)
