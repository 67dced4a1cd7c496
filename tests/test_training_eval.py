"""AdaFace and friends, iResNet shapes, the 10-fold protocol and .bin files."""

import math
import pickle

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from hyperface.recognition import evaluation
from hyperface.recognition.heads import AdaFace, build_head
from hyperface.recognition.iresnet import build_backbone
from hyperface.storage.containers import Encoding, encode


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
    mean = 0.99 * 20 + 0.01 * 20.0  # batch mean of (10, 30) is 20
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


def _insightface_reference(distance, issame, n_folds=10):
    """insightface's calculate_roc + calculate_val, transcribed loop for loop (one threshold at a
    time with np.less, O(thresholds x pairs)): what the fast search must equal exactly."""
    n = len(issame)
    acc, thr, val, far = [], [], [], []
    for test in np.array_split(np.arange(n), n_folds):
        train = np.setdiff1d(np.arange(n), test)

        def accuracy(t, idx):
            pred = np.less(distance[idx], t)
            return float(np.sum(pred & issame[idx]) + np.sum(~pred & ~issame[idx])) / len(idx)

        def val_far(t, idx):
            pred = np.less(distance[idx], t)
            same, diff = issame[idx], ~issame[idx]
            return float(np.sum(pred & same)) / float(np.sum(same)), float(
                np.sum(pred & diff)
            ) / float(np.sum(diff))

        grid = np.arange(0, 4, 0.01)
        best = grid[np.argmax([accuracy(t, train) for t in grid])]
        acc.append(accuracy(best, test))
        thr.append(best)
        fine = np.arange(0, 4, 0.001)
        far_train = np.array([val_far(t, train)[1] for t in fine])
        # interp1d(kind="slinear") built this k=1 B-spline; today's interp1d refuses repeated FARs
        line = BSpline(np.r_[far_train[0], far_train, far_train[-1]], fine, k=1)
        t_val = float(line(1e-3)) if far_train.max() >= 1e-3 else 0.0
        v, f = val_far(t_val, test)
        val.append(v)
        far.append(f)
    return np.array(acc), np.array(thr), np.array(val), np.array(far)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ten_fold_equals_insightface_protocol(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    same = rng.random(n) < 0.5
    distance = np.where(same, rng.normal(0.9, 0.35, n), rng.normal(1.7, 0.3, n)).clip(0, 4)
    distance[:200] = np.round(distance[:200], 2)  # scores on the grid itself: ties with thresholds
    result = evaluation.ten_fold(distance, same)
    acc, thr, val, far = _insightface_reference(distance, same)
    np.testing.assert_array_equal(result.fold_accuracy, acc)
    np.testing.assert_array_equal(result.fold_threshold, thr)
    np.testing.assert_array_equal(result.fold_val, val)
    np.testing.assert_array_equal(result.fold_far, far)
    assert 0.7 < result.accuracy < 1.0 and 0.0 < result.val < 1.0


def test_ten_fold_by_hand():
    # 20 pairs in 10 folds of 2: genuine pairs at squared distance 0.5, impostors at 2.0005, but
    # the genuine pairs 0 and 2 (folds 0 and 1) lie at 3.5, beyond every impostor.
    same = np.array([True, False] * 10)
    distance = np.where(same, 0.5, 2.0005)
    distance[[0, 2]] = 3.5
    result = evaluation.ten_fold(distance, same)
    # accuracy: on any nine folds the first best grid threshold is the first one above 0.5 (0.51):
    # every impostor rejected, every genuine pair but the far ones accepted. Folds 0 and 1 get
    # their impostor right and their far genuine pair wrong.
    assert result.fold_threshold == pytest.approx(np.full(10, 0.51))
    np.testing.assert_array_equal(result.fold_accuracy, [0.5, 0.5] + [1.0] * 8)
    assert result.accuracy == pytest.approx(0.9)
    # VAL: the false accept rate on the 0.001 grid is 0 up to 2.000 and 1 from 2.001, so FAR=1e-3
    # interpolates to 2.000 + 0.001 x 0.001; it accepts every genuine pair but the far ones.
    assert result.fold_val_threshold == pytest.approx(np.full(10, 2.000001), abs=1e-9)
    np.testing.assert_array_equal(result.fold_val, [0.0, 0.0] + [1.0] * 8)
    np.testing.assert_array_equal(result.fold_far, np.zeros(10))


def test_summary_shows_val_only_where_the_benchmark_can_measure_it():
    row = {"model": "m", "accuracy": 0.9, "std": 0.05, "val": 0.5, "val_std": 0.1, "far": 0.001}
    # the demo's holdout: 135 impostor pairs in nine folds, too few for a FAR of 1e-3
    small = evaluation.summary_table([{**row, "benchmark": "holdout", "n_pairs": 300}])
    assert small.splitlines()[-1] == "| m | holdout | 90.00 | 5.00 | - | - | 300 |  |"
    lfw = evaluation.summary_table([{**row, "benchmark": "lfw", "n_pairs": 6000}])
    assert (
        lfw.splitlines()[-1]
        == "| m | lfw | 90.00 | 5.00 | 50.00 +- 10.00 | 0.00100 | 6000 | 98.67 |"
    )
    assert not evaluation.val_measurable(2222) and evaluation.val_measurable(2223)


def test_flip_fused_embeddings_sum_raw_features():
    class Fixed(torch.nn.Module):
        def forward(self, x):  # raw feature (x[0, 0] + 2, 3 x[0, -1]) of channel 0, as (unit, norm)
            raw = torch.stack([x[:, 0, 0, 0] + 2, 3 * x[:, 0, 0, -1]], dim=1)
            norm = raw.norm(dim=1, keepdim=True)
            return raw / norm, norm

    image = np.zeros((1, 4, 4, 3), np.uint8)
    image[0, 0, 0, 0] = 255  # network values +1 at the left corner, -1 at the right one
    # raw features: image (3, -3), flipped (1, 3); their sum (4, 0) normalises to (1, 0), where
    # summing the unit vectors instead would give a different direction
    np.testing.assert_allclose(evaluation.embed_flip_fused(Fixed(), image), [[1.0, 0.0]], atol=1e-6)


def test_bin_round_trip(tmp_path):
    images = [np.full((112, 112, 3), v, np.uint8) for v in (0, 50, 100, 150, 200, 250)]
    path = tmp_path / "x.bin"
    jpeg = Encoding("jpeg", 95)
    evaluation.write_bin(path, [encode(im, jpeg) for im in images], [True, False, True])
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
    # at scale: 100 identities x 64 images hold 201,600 genuine pairs; LFW's 6,000 are drawn instead
    ident = np.random.default_rng(1).permutation(np.repeat(np.arange(100), 64))
    pairs, same = evaluation.holdout_pairs(ident, np.random.default_rng(0), max_pairs=6000)
    assert same.sum() == 3000 and (~same).sum() == 3000
    assert np.all((ident[pairs[:, 0]] == ident[pairs[:, 1]]) == same) and np.all(
        pairs[:, 0] < pairs[:, 1]
    )
    assert len({tuple(p) for p in pairs.tolist()}) == 6000  # distinct
    assert len(np.unique(ident[pairs[same, 0]])) > 90  # spread over the identities


@pytest.mark.parametrize("name", ["adaface", "arcface", "cosface"])
def test_class_centres_start_on_the_unit_sphere(name):
    head = build_head(name, 512, 100)
    torch.testing.assert_close(head.kernel.norm(dim=0), torch.ones(100))


def test_weight_decay_groups_as_adaface():
    from hyperface.recognition.training import _param_groups

    model = build_backbone("iresnet18", width=8, embedding_size=16)
    head = build_head("adaface", 16, 10)
    decay, no_decay = _param_groups([model, head], 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    bn = {
        id(p)
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        for p in m.parameters(recurse=False)
        if p.requires_grad
    }  # the features' scale is frozen
    prelu = [p for m in model.modules() if isinstance(m, torch.nn.PReLU) for p in m.parameters()]
    assert {id(p) for p in no_decay["params"]} == bn
    decayed = {id(p) for p in decay["params"]}
    assert id(head.kernel) in decayed and prelu and all(id(p) in decayed for p in prelu)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(decayed) + len(bn) == len(trainable) + 1


def test_onnx_export_equals_the_weights_and_loads_as_an_insightface_recogniser(tmp_path):
    import insightface
    import onnx

    from hyperface.recognition.onnx_export import export_onnx
    from hyperface.storage.images import to_network

    model = build_backbone("iresnet18", width=8, embedding_size=32).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "model.onnx"
    difference = export_onnx(model, path, {"backbone": "iresnet18"})
    assert difference < 1e-4
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert (
        "RGB" in props["input"] and "127.5" in props["input"] and props["backbone"] == "iresnet18"
    )

    recogniser = insightface.model_zoo.get_model(str(path))
    assert type(recogniser).__name__ == "ArcFaceONNX" and recogniser.input_mean == 127.5
    rgb = np.random.default_rng(0).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    feature = recogniser.get_feat(np.ascontiguousarray(rgb[:, :, ::-1]))  # insightface takes BGR
    with torch.no_grad():
        unit, norm = model(to_network([rgb]))
    np.testing.assert_allclose(
        feature, (unit * norm).numpy(), rtol=0, atol=1e-4 * float(norm.max())
    )
