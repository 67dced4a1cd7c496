"""MTCNN alignment on a real photo shipped with scikit-image."""

import numpy as np
import pyarrow as pa
import pytest
from skimage import data

from hyperface.recognition.alignment import Aligner, pick_face, similarity_transform
from hyperface.storage.images import ARCFACE_TEMPLATE


@pytest.fixture(scope="module")
def aligner():
    return Aligner(size=112, min_face_prob=0.9, fallback="center_crop")


def test_astronaut_lands_on_the_template(aligner):
    result = aligner.align([data.astronaut()])[0]
    assert result.status == "ok" and result.prob > 0.99
    assert result.crop.shape == (112, 112, 3)
    # detect again on the aligned crop: the five points sit within a few pixels of the template
    # a similarity transform cannot undo a turned head exactly: the points land within a few pixels
    _, _, points = aligner.detect([result.crop])[0]
    errors = np.linalg.norm(points[0] - ARCFACE_TEMPLATE, axis=1)
    # measured: mean 6.5, max 13.2 px (the pyramid for a 112 px crop starts at 12/22)
    assert errors.mean() < 7.0 and errors.max() < 14.0


def test_image_without_a_face(aligner):
    blank = np.full((256, 256, 3), 127, np.uint8)
    result = aligner.align([blank])[0]
    assert result.status == "no_face" and result.crop.shape == (112, 112, 3)
    assert np.isnan(result.landmarks).all()
    dropped = Aligner(fallback="drop").align([blank])[0]
    assert dropped.crop is None


def test_similarity_transform_recovers_a_known_one():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = ARCFACE_TEMPLATE @ (scale * rot).T + shift
    m = similarity_transform(ARCFACE_TEMPLATE, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_face_nearest_the_centre_wins():
    boxes = np.array([[0, 0, 50, 50], [80, 80, 120, 120], [70, 70, 130, 130]], float)
    assert pick_face(boxes, (200, 200, 3)) == 2  # both centred: the larger one


def test_head_pose_of_the_template_and_of_a_rolled_face():
    from hyperface.quality.statistics import head_pose

    frontal = head_pose(ARCFACE_TEMPLATE.reshape(1, 10))[0]
    np.testing.assert_allclose(frontal[[1]], 0.0, atol=1e-6)  # pitch zero by calibration
    assert abs(frontal[0]) < 3 and abs(frontal[2]) < 1  # the template is very nearly symmetric
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = head_pose((ARCFACE_TEMPLATE @ rot.T).reshape(1, 10))[0]
    assert rolled[2] == pytest.approx(frontal[2] + 20, abs=1e-6)
    np.testing.assert_allclose(rolled[:2], frontal[:2], atol=1e-6)  # yaw, pitch ignore roll
    turned = ARCFACE_TEMPLATE.copy()
    turned[2, 0] += 8  # nose tip moves sideways: the head turns
    assert head_pose(turned.reshape(1, 10))[0, 0] > frontal[0] + 15
    assert np.isnan(head_pose(np.full((1, 10), np.nan))).all()


def test_top_pairs_match_brute_force():
    from hyperface.quality.leakage import top_pairs

    rng = np.random.default_rng(0)
    syn = rng.normal(size=(50, 8))
    syn[3] = np.nan  # an image without a crop
    real = rng.normal(size=(30, 8))
    s, r, c = top_pairs(syn, real, k=7, block=16)
    sims = np.nan_to_num(syn @ real.T, nan=-np.inf)
    flat = np.sort(sims.ravel())[::-1][:7]
    np.testing.assert_allclose(c, flat, rtol=1e-6)
    np.testing.assert_allclose(sims[s, r], c, rtol=1e-6)


def test_top_pairs_shard_by_shard_equal_all_at_once(tmp_path):
    """The leakage stage holds one shard's embeddings at a time and finds the same pairs."""
    from hyperface.quality.leakage import top_pairs
    from hyperface.stages.leakage import shard_top_pairs
    from hyperface.storage import manifests

    rng = np.random.default_rng(1)
    syn = rng.normal(size=(90, 8)).astype(np.float32)
    real = rng.normal(size=(30, 8)).astype(np.float32)
    schema = pa.schema([("embedding", manifests.embedding_type(8))])
    shards = [tmp_path / f"shard-{i}.parquet" for i in range(3)]
    for i, path in enumerate(shards):
        manifests.write_manifest(path, {"embedding": syn[30 * i : 30 * (i + 1)]}, schema)
    for got, want in zip(shard_top_pairs(shards, real, 10), top_pairs(syn, real, 10), strict=True):
        np.testing.assert_array_equal(got, want)


def test_leakage_exclusion_is_counted():
    import pandas as pd

    from hyperface.stages.dataset import select

    frame = pd.DataFrame(
        {
            "identity": [0, 0, 1, 1, 2],
            "sample": [0, 1, 0, 1, 0],
            "row": [0, 1, 2, 3, 4],
            "has_image": [True, True, True, False, True],
            "status": ["ok", "ok", "ok", "no_face", "ok"],
            "reference_cos": [0.9, 0.2, 0.8, np.nan, 0.7],
        }
    )
    leaked = pd.DataFrame({"identity": [1], "sample": [0]})
    kept, counts = select(
        frame,
        n_identities=3,
        holdout_identities=0,
        min_reference_cos=0.5,
        keep_undetected=False,
        leaked=leaked,
    )
    assert counts == {
        "holdout": 0,
        "no_crop": 1,
        "undetected": 0,
        "identity_consistency": 1,
        "leakage": 1,
        "kept": 2,
    }
    assert kept["row"].tolist() == [0, 4]


def test_group_photo_from_insightface_picks_a_confident_central_face(aligner):
    import os

    import insightface

    from hyperface.storage.images import load_rgb

    photo = load_rgb(
        os.path.join(os.path.dirname(insightface.__file__), "data", "images", "t1.jpg")
    )
    boxes, probs, _ = aligner.detect([photo])[0]
    assert (probs > 0.99).sum() >= 5  # a group photo: several real faces
    result = aligner.align([photo])[0]
    assert result.status == "ok" and result.prob >= 0.9
    centre = np.array([photo.shape[1] / 2, photo.shape[0] / 2])
    confident = boxes[probs >= 0.9]
    dist = np.linalg.norm((confident[:, :2] + confident[:, 2:]) / 2 - centre, axis=1)
    chosen = np.linalg.norm((result.box[:2] + result.box[2:]) / 2 - centre)
    assert chosen == pytest.approx(dist.min(), abs=1e-3)
    # a similarity transform cannot undo a turned head exactly: the points land within a few pixels
    _, _, points = aligner.detect([result.crop])[0]
    errors = np.linalg.norm(points[0] - ARCFACE_TEMPLATE, axis=1)
    # measured: mean 6.5, max 13.2 px (the pyramid for a 112 px crop starts at 12/22)
    assert errors.mean() < 7.0 and errors.max() < 14.0
