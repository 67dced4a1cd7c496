"""Training: augmentations, the diversity term, and resuming mid-epoch to the same weights."""

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from hyperface import augment, training
from hyperface.heads import diversity_loss
from hyperface.images import save_png


def test_augmentations_keep_shape_and_are_seeded():
    img = np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    kwargs = dict(flip_prob=0.5, crop_prob=1.0, low_res_prob=1.0, photometric_prob=1.0)
    a = augment.augment(img, np.random.default_rng(5), **kwargs)
    b = augment.augment(img, np.random.default_rng(5), **kwargs)
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, img)
    np.testing.assert_array_equal(augment.augment(img, np.random.default_rng(1)), img if
                                  np.random.default_rng(1).random() >= 0.5 else img[:, ::-1])


def test_crop_keeps_the_face_in_place():
    img = np.full((112, 112, 3), 200, np.uint8)
    out = augment.crop_in_place(img, np.random.default_rng(3))
    kept = out.any(axis=2)
    rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
    assert kept.sum() == len(rows) * len(cols) >= 0.2 * 112 * 112 - 200  # one box, >= 20 % area
    assert np.all(out[kept] == 200)


def test_diversity_loss_pushes_samples_from_other_centres():
    cos = torch.tensor([[0.9, 0.5, -0.3], [0.2, 0.8, 0.1]], requires_grad=True)
    labels = torch.tensor([0, 1])
    loss = diversity_loss(cos, labels, s=2.0)
    # by hand: non-target entries 0.5, -0.3 (truncated to 0), 0.2, 0.1
    z = np.array([2 * 0.25, 0.0, 2 * 0.04, 2 * 0.01])
    assert float(loss.detach()) == pytest.approx(np.log(np.exp(z).mean()), rel=1e-6)
    loss.backward()
    assert cos.grad[0, 0] == 0 and cos.grad[1, 1] == 0  # targets untouched
    assert cos.grad[0, 2] == 0  # past 90 degrees: no push
    assert cos.grad[0, 1] > 0 and cos.grad[1, 0] > 0


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    rows = []
    for ident in range(4):
        base = rng.integers(0, 255, (112, 112, 3))
        for k in range(6):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            save_png(img, root / f"{ident}/{k}.png")
            rows.append({"image": f"{ident}/{k}.png", "label": ident})
    return root, pd.DataFrame(rows)


TRAIN = dict(backbone="iresnet18", width=4, embedding_size=16, epochs=3, batch_size=8, lr=0.05,
             milestones=[2], crop_prob=0.3, low_res_prob=0.3, photometric_prob=0.3, diversity_weight=0.1)


class _StopAfter:
    """A StopRequest stand-in that asks to stop once ``n`` training steps have been taken."""

    polls = 0

    def __init__(self, *args, **kwargs):
        pass

    @property
    def requested(self) -> bool:
        _StopAfter.polls += 1
        return _StopAfter.polls == 5

    def restore(self) -> None:
        pass


def test_interrupted_training_resumes_to_identical_weights(faces, tmp_path, monkeypatch):
    root, frame = faces
    straight = training.train(frame, root, tmp_path / "a.safetensors", tmp_path / "a.pt", **TRAIN)
    assert len(straight.history) == 3

    _StopAfter.polls = 0
    monkeypatch.setattr(training, "StopRequest", _StopAfter)
    with pytest.raises(training.TrainingInterrupted, match="epoch 1, step 2"):
        training.train(frame, root, tmp_path / "b.safetensors", tmp_path / "b.pt", **TRAIN)
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    monkeypatch.undo()
    training.train(frame, root, tmp_path / "b.safetensors", tmp_path / "b.pt", **TRAIN)
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_trained_backbone_round_trips(faces, tmp_path):
    root, frame = faces
    training.train(frame, root, tmp_path / "m.safetensors", tmp_path / "m.pt",
                   **{**TRAIN, "epochs": 1})
    model = training.load_backbone(tmp_path / "m.safetensors")
    emb, norm = model(torch.zeros(1, 3, 112, 112))
    assert emb.shape == (1, 16)
