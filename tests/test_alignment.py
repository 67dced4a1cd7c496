"""MTCNN alignment on a real photo shipped with scikit-image."""

import numpy as np
import pytest
from hyperface.alignment import ARCFACE_TEMPLATE, Aligner, pick_face, similarity_transform
from skimage import data


@pytest.fixture(scope="module")
def aligner():
    return Aligner(size=112, min_face_prob=0.9, fallback="center_crop")


def test_astronaut_lands_on_the_template(aligner):
    result = aligner.align([data.astronaut()])[0]
    assert result.status == "ok" and result.prob > 0.99
    assert result.crop.shape == (112, 112, 3)
    # detect again on the aligned crop: the five points sit within a few pixels of the template
    _, _, points = aligner.detect([result.crop])[0]
    assert np.abs(points[0] - ARCFACE_TEMPLATE).max() < 8.0


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
