"""Training: augmentations, the diversity term, and resuming mid-epoch to the same weights."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file

from hyperface.recognition import augment, training
from hyperface.recognition.heads import diversity_loss
from hyperface.settings import TrainingSettings
from hyperface.storage import manifests
from hyperface.storage.containers import Encoding, image_cell


def test_augmentations_keep_shape_and_are_seeded():
    img = np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    kwargs = dict(flip_prob=0.5, crop_prob=1.0, low_res_prob=1.0, photometric_prob=1.0)
    a = augment.augment(img, np.random.default_rng(5), **kwargs)
    b = augment.augment(img, np.random.default_rng(5), **kwargs)
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, img)
    np.testing.assert_array_equal(
        augment.augment(img, np.random.default_rng(1)),
        img if np.random.default_rng(1).random() >= 0.5 else img[:, ::-1],
    )


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
    cells, labels = [], []
    for ident in range(4):
        base = rng.integers(0, 255, (112, 112, 3))
        for k in range(6):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            cells.append(image_cell(img, f"{ident:07d}/{k:04d}", Encoding("png")))
            labels.append(ident)
    schema = pa.schema([("label", pa.int64()), ("image", manifests.IMAGE)])
    manifests.write_manifest(
        root / "aligned/shard-00000.parquet", {"label": labels, "image": cells}, schema
    )
    return root, pd.DataFrame(
        {"container": "aligned/shard-00000.parquet", "row": range(len(labels)), "label": labels}
    )


def recipe(**settings) -> TrainingSettings:
    """The schema's training recipe with ``settings`` changed."""
    return TrainingSettings.from_section(settings)


TRAIN = dict(
    backbone="iresnet18",
    width=4,
    embedding_size=16,
    epochs=3,
    batch_size=8,
    lr=0.05,
    milestones=[2],
    crop_prob=0.3,
    low_res_prob=0.3,
    photometric_prob=0.3,
    diversity_weight=0.1,
)


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
    straight = training.train(
        frame, root, tmp_path / "a.safetensors", tmp_path / "a.pt", recipe(**TRAIN)
    )
    assert len(straight.history) == 3

    _StopAfter.polls = 0
    monkeypatch.setattr(training, "StopRequest", _StopAfter)
    with pytest.raises(training.TrainingInterrupted, match="epoch 1, step 2"):
        training.train(frame, root, tmp_path / "b.safetensors", tmp_path / "b.pt", recipe(**TRAIN))
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    monkeypatch.undo()
    training.train(frame, root, tmp_path / "b.safetensors", tmp_path / "b.pt", recipe(**TRAIN))
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_trained_backbone_round_trips(faces, tmp_path):
    root, frame = faces
    training.train(
        frame, root, tmp_path / "m.safetensors", tmp_path / "m.pt", recipe(**{**TRAIN, "epochs": 1})
    )
    model = training.load_backbone(tmp_path / "m.safetensors")
    emb, norm = model(torch.zeros(1, 3, 112, 112))
    assert emb.shape == (1, 16)


# the diversity term is per rank: off. A small learning rate: this toy's loss swings between 20
# and 60 at larger ones, so float rounding differences grow about tenfold per step (measured).
RANKS = {**TRAIN, "diversity_weight": 0.0, "epochs": 2, "lr": 1e-4}


def test_two_ranks_train_the_model_one_process_trains(faces, tmp_path):
    """Same global batch, 2 gloo ranks vs 1 process: BatchNorm and AdaFace statistics over both
    ranks' halves, gradients averaged - the same training up to float summation order."""
    root, frame = faces
    training.train(
        frame,
        root,
        tmp_path / "init.safetensors",
        tmp_path / "init.pt",
        recipe(**{**RANKS, "epochs": 0}),
    )
    one = training.train(
        frame, root, tmp_path / "one.safetensors", tmp_path / "one.pt", recipe(**RANKS)
    )
    two = training.train(
        frame, root, tmp_path / "two.safetensors", tmp_path / "two.pt", recipe(**RANKS, gpus=2)
    )
    init, a, b = (load_file(tmp_path / f"{n}.safetensors") for n in ("init", "one", "two"))
    assert a.keys() == b.keys()
    # the difference between the two models relative to how far training moved the weights
    # (parameters and BatchNorm statistics, all tensors together)
    apart = _weights_apart(init, a, b)
    print(f"2 ranks vs 1 process: difference {apart:.1e} of how far training moved the model")
    assert apart < 1e-3
    # measured: 2.4e-5 (each rank's BatchNorm statistics are merged: the rounding differs from one
    # process's, both within 1e-6 of float64 - tests/test_gpu_path.py)
    np.testing.assert_allclose(one.history["loss"], two.history["loss"], rtol=1e-4)
    assert two.history["images"].tolist() == one.history["images"].tolist() == [24, 24]


def _weights_apart(init: dict, a: dict, b: dict) -> float:
    """How far two trained models are apart, relative to how far training moved the first."""
    keys = [k for k in a if a[k].is_floating_point()]
    moved = torch.cat([(a[k] - init[k]).flatten() for k in keys]).double().norm()
    return float(torch.cat([(a[k] - b[k]).flatten() for k in keys]).double().norm() / moved)


def test_centres_split_across_two_ranks_train_the_one_process_model(faces, tmp_path):
    """PartialFC: each rank holds half the class centres and scores every rank's embeddings
    against them; the model and the loss are the unsplit one-process training's."""
    root, frame = faces
    training.train(
        frame,
        root,
        tmp_path / "init.safetensors",
        tmp_path / "init.pt",
        recipe(**{**RANKS, "epochs": 0}),
    )
    one = training.train(
        frame, root, tmp_path / "one.safetensors", tmp_path / "one.pt", recipe(**RANKS)
    )
    split = training.train(
        frame,
        root,
        tmp_path / "split.safetensors",
        tmp_path / "split.pt",
        recipe(**RANKS, gpus=2, partial_fc=True),
    )
    init, a, b = (load_file(tmp_path / f"{n}.safetensors") for n in ("init", "one", "split"))
    apart = _weights_apart(init, a, b)
    print(
        f"centres split over 2 ranks vs 1 process: difference {apart:.1e} of how far training "
        f"moved the model"
    )
    assert apart < 1e-3
    np.testing.assert_allclose(one.history["loss"], split.history["loss"], rtol=1e-4)
    # the checkpoint holds every centre (and its momentum) in class order, as one process's does
    states = [torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("one", "split")]
    assert states[0]["head"]["kernel"].shape == states[1]["head"]["kernel"].shape == (16, 4)
    torch.testing.assert_close(
        states[0]["head"]["kernel"], states[1]["head"]["kernel"], rtol=1e-3, atol=1e-5
    )


def test_split_centres_resume_from_their_checkpoint_bit_for_bit(faces, tmp_path):
    """Two ranks with split centres and negative sampling: 1 epoch, then a second from the
    checkpoint (gathered centres and momentum, sliced again), equals 2 epochs straight."""
    root, frame = faces
    settings = {**RANKS, "partial_fc": True, "sample_rate": 0.5}
    training.train(
        frame, root, tmp_path / "a.safetensors", tmp_path / "a.pt", recipe(**settings, gpus=2)
    )
    training.train(
        frame,
        root,
        tmp_path / "b.safetensors",
        tmp_path / "b.pt",
        recipe(**{**settings, "epochs": 1, "gpus": 2}),
    )
    training.train(
        frame, root, tmp_path / "b.safetensors", tmp_path / "b.pt", recipe(**settings, gpus=2)
    )
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_negative_sampling_keeps_the_batch_classes():
    from hyperface.recognition.heads import build_head
    from hyperface.recognition.partial_fc import PartialFC, shard_bounds

    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]
    sharded = PartialFC(
        build_head("arcface", 8, 100), 100, rank=1, world=2, sample_rate=0.1, seed=0
    )
    labels = torch.tensor([3, 51, 51, 77, 99])
    columns = sharded.sample(labels)
    assert len(columns) == 5 and {1, 27, 49} <= set(
        columns.tolist()
    )  # 51, 77, 99 held here as 1, 27, 49
    assert torch.equal(columns, sharded.sample(labels))  # drawn from (seed, epoch, step, rank)
    sharded.step_key = (0, 1)
    assert not torch.equal(columns, sharded.sample(labels))
    assert PartialFC(build_head("arcface", 8, 100), 100, 0, 2).sample(labels) is None  # rate 1: all


def test_two_ranks_resume_after_a_kill(faces, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    root, frame = faces
    settings = {**RANKS, "epochs": 8}
    frame.to_parquet(tmp_path / "frame.parquet")
    code = (
        "import sys, pandas as pd; from hyperface.recognition import training; "
        f"training.train(pd.read_parquet(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], "
        f"training.TrainingSettings.from_section({settings!r}, gpus=2))"
    )
    ckpt = tmp_path / "killed.pt"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "frame.parquet"),
            str(root),
            str(tmp_path / "killed.safetensors"),
            str(ckpt),
        ],
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(training.Path(training.__file__).parents[2])},
    )
    deadline = time.monotonic() + 300
    while not ckpt.exists():  # the first epoch's checkpoint: the ranks are training the second
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)  # as SLURM does: every process of the job
    assert proc.wait(timeout=120) != 0
    state = torch.load(ckpt, weights_only=True)
    assert 1 <= state["epoch"] < settings["epochs"]
    assert not (tmp_path / "killed.safetensors").exists()

    resumed = training.train(
        frame, root, tmp_path / "killed.safetensors", ckpt, recipe(**settings, gpus=2)
    )
    straight = training.train(
        frame,
        root,
        tmp_path / "straight.safetensors",
        tmp_path / "straight.pt",
        recipe(**settings, gpus=2),
    )
    a, b = load_file(tmp_path / "killed.safetensors"), load_file(tmp_path / "straight.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    pd.testing.assert_frame_equal(
        resumed.history.drop(columns=["seconds", "images_per_s"]),
        straight.history.drop(columns=["seconds", "images_per_s"]),
    )


def test_too_few_images_to_train_is_a_clear_error(tmp_path):
    """One image left after the filters (e.g. leakage.exclude): BatchNorm cannot train on it."""
    frame = pd.DataFrame({"container": ["aligned/shard-00000.parquet"], "row": [0], "label": [0]})
    with pytest.raises(ValueError, match="1 image.*at least 2"):
        training.train(frame, tmp_path, tmp_path / "w.safetensors", tmp_path / "c.pt", recipe())
