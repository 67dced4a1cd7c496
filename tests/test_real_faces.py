"""Real face models from PyPI packages on real photos: the recognisers match the same person and
separate different people at their published operating points, alignment puts the landmarks on
the template, MobileStyleGAN draws faces per seed, and the judge scores a same-person set high and
a mixed set low.

Photos: face_recognition's test images (three of one person, one of another; `make` puts them in
.venv/share/face-photos) and scikit-image's astronaut.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperface.generators.gallery import read_rgb
from hyperface.generators.mobilestylegan import MobileStyleGANGallery, to_uint8
from hyperface.generators.packaged import PACKAGED, copy_packaged
from hyperface.quality import real_photos
from hyperface.quality.judge import DlibJudge, YuNetDetector, judge_images
from hyperface.quality.verdicts import identity_verdicts, judged_same
from hyperface.recognition.alignment import Aligner
from hyperface.recognition.embedders import SFaceEmbedder
from hyperface.storage.images import ARCFACE_TEMPLATE

REPO = Path(__file__).resolve().parents[1]
PHOTOS = real_photos.installed_photos()
SAME = ["obama", "obama2", "obama3"]  # one person
OTHER = "biden"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packaged")
    return {name: copy_packaged(name, root / name) for name in PACKAGED}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    import skimage.data

    if not (PHOTOS / "obama.jpg").is_file():
        raise FileNotFoundError(
            f"{PHOTOS}: face_recognition's test photos are missing; `make test` "
            "downloads them (or set HYPERFACE_FACE_PHOTOS)"
        )
    found = {name: read_rgb(PHOTOS / f"{name}.jpg") for name in [*SAME, OTHER]}
    return {**found, "astronaut": skimage.data.astronaut()}


@pytest.fixture(scope="module")
def crops(photos) -> dict[str, np.ndarray]:
    aligner = Aligner(min_face_prob=0.9, fallback="center_crop")
    out = {}
    for name, image in photos.items():
        face = aligner.align([image])[0]
        assert face.status == "ok", name
        out[name] = face.crop
    return out


def test_aligned_crops_put_the_landmarks_on_the_template(crops, models):
    """An independent detector (YuNet) finds the five points on each MTCNN-aligned crop within a
    few pixels of the ArcFace template (the detectors place mouth corners a little differently)."""
    detector = YuNetDetector(models["yunet"])
    for name, crop in crops.items():
        _, landmarks, score = detector.detect(crop)
        assert score > 0, name
        error = np.linalg.norm(landmarks.reshape(5, 2) - ARCFACE_TEMPLATE, axis=1)
        assert error.mean() < 5.0 and error.max() < 8.0, (name, error.round(1))


def test_sface_matches_one_person_and_separates_another(crops, models):
    """At SFace's published threshold (cosine 0.363, OpenCV's FaceRecognizerSF)."""
    embedder = SFaceEmbedder(models["sface"])
    emb = embedder.embed([crops[n] for n in [*SAME, OTHER, "astronaut"]])
    cos = emb @ emb.T
    same = cos[np.triu_indices(3, k=1)]
    assert (same >= SFaceEmbedder.threshold).all(), same
    assert (cos[:3, 3:] < SFaceEmbedder.threshold).all(), cos[:3, 3:]
    assert emb.shape[1] == embedder.dim == 128


def test_dlib_matches_one_person_and_separates_another(photos, models):
    """dlib's own pipeline (its shape predictor and chip on YuNet's box) at its published
    Euclidean distance 0.6, on the full photos."""
    names = [*SAME, OTHER, "astronaut"]
    scores, desc = judge_images(
        [photos[n] for n in names], YuNetDetector(models["yunet"]), DlibJudge(models["dlib"])
    )
    assert (scores > 0).all()
    decided = judged_same(desc, desc, "l2", DlibJudge.threshold)
    assert decided[:3, :3].all()
    assert not decided[:3, 3:].any()


def test_judge_scores_a_same_person_set_high_and_a_mixed_set_low(crops, models):
    """Identity 0: three photos of one person; identity 1: three different people."""
    names = [*SAME, OTHER, "astronaut", "obama"]
    scores, desc = judge_images(
        [crops[n] for n in names], YuNetDetector(models["yunet"]), DlibJudge(models["dlib"])
    )
    table = identity_verdicts(np.array([0, 0, 0, 1, 1, 1]), desc, "l2", DlibJudge.threshold)
    same, mixed = table.set_index("identity").loc[0], table.set_index("identity").loc[1]
    assert (scores > 0).all()
    assert same["genuine_match"] == 1.0 and mixed["genuine_match"] == 0.0
    assert same["consistency"] > mixed["consistency"] + 0.1, table
    assert same["judged"] == mixed["judged"] == 3 and same["nearest_identity"] == 1


def test_mobilestylegan_draws_a_face_per_seed_and_index(models):
    gallery = MobileStyleGANGallery(models["mobilestylegan"], truncation_psi=0.7, threads=2)
    a, b = gallery.generate([0, 1], seed=0)
    assert a.shape == (1024, 1024, 3) and a.dtype == np.uint8
    assert np.array_equal(gallery.generate([1], seed=0)[0], b)  # index i's face, whatever the batch
    assert not np.array_equal(gallery.generate([0], seed=1)[0], a)
    faces = Aligner(min_face_prob=0.9, fallback="center_crop").align([a, b])
    assert [f.status for f in faces] == ["ok", "ok"]
    assert all(YuNetDetector(models["yunet"]).detect(x)[2] > 0 for x in (a, b))
    mean = MobileStyleGANGallery(
        models["mobilestylegan"], truncation_psi=0.0
    )  # psi 0: the mean face
    assert np.array_equal(*mean.generate([0, 1], seed=0))


def test_per_layer_styles_equal_the_network_when_every_layer_has_the_same_style(models):
    """MobileStyleGAN's synthesis with a style per layer (w+) and its noise maps as inputs: all
    rows equal and the baked noise -> the published network's face (within one level); fine
    layers from another face, or fresh noise, -> another image."""
    gallery = MobileStyleGANGallery(models["mobilestylegan"], truncation_psi=0.7, threads=2)
    z = np.random.default_rng(0).standard_normal((2, 512)).astype(np.float32)
    w = gallery.mapping(z)[0]
    plain = to_uint8(gallery.synthesis(w[:1])[0][0])  # the published network
    same = np.abs(plain.astype(int) - gallery.draw_styles(np.repeat(w[:1], 23, axis=0)))
    assert same.max() <= 1 and same.mean() < 1e-3  # measured: max 1, mean 5e-6 (rounding)
    mixed = np.repeat(w[:1], 23, axis=0)
    mixed[12:] = w[1]  # the fine layers' styles from the second face
    assert np.abs(gallery.draw_styles(mixed).astype(int) - plain).mean() > 1.0
    # fresh noise maps: the same face in other fine detail
    rng = np.random.default_rng(1)
    fresh = [rng.standard_normal(n.shape).astype(np.float32) for n in gallery.baked_noise]
    moved = np.abs(gallery.draw_styles(np.repeat(w[:1], 23, axis=0), fresh).astype(int) - plain)
    print(f"fresh noise maps: mean change {moved.mean():.2f} of 255")
    assert 0 < moved.mean() < 15  # measured: 7.7 (hair, skin texture, background detail)


def test_a_missing_package_names_what_to_install(monkeypatch, tmp_path):
    from hyperface.generators import packaged

    monkeypatch.setitem(
        packaged.PACKAGED,
        "nowhere",
        packaged.PackagedModel("no_such_package", "data", ("x",), "pip install x"),
    )
    with pytest.raises(FileNotFoundError, match="pip install x"):
        copy_packaged("nowhere", tmp_path)


def test_real_photos_are_paired_by_person_and_ranked(models):
    """face_recognition's photos give every genuine and impostor pair; SFace, a recogniser
    trained on real faces, ranks every genuine pair above every impostor pair (AUC 1)."""
    named = real_photos.person_photos(PHOTOS)
    assert {p for p, _ in named} >= {"obama", "biden"}
    assert all(path.stem[0].isalpha() for _, path in named)  # 32bit.png is left out
    people, crops = real_photos.aligned_photos(PHOTOS)
    assert crops.shape[1:] == (112, 112, 3) and people.count("biden") == 1
    verdict = real_photos.judge_photos(SFaceEmbedder(models["sface"]).features, people, crops)
    n = len(people)
    assert len(verdict.genuine) + len(verdict.impostor) == n * (n - 1) // 2
    assert len(verdict.impostor) == n - 1 and verdict.auc == 1.0
    print(real_photos.table({"SFace": verdict}))
