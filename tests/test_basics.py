"""Seeding, shard arithmetic, manifests and config checks."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from hyperface import seeding
from hyperface.config_checks import config_errors
from hyperface.storage import manifests, shards

from .conftest import demo_config


def test_seeds_depend_on_stage_and_index_only():
    assert seeding.derive_seed(0, "generate", 4711, 3) == seeding.derive_seed(
        0, "generate", 4711, 3
    )
    others = {
        seeding.derive_seed(0, "generate", 4711, 4),
        seeding.derive_seed(1, "generate", 4711, 3),
        seeding.derive_seed(0, "gallery", 4711, 3),
    }
    assert seeding.derive_seed(0, "generate", 4711, 3) not in others
    a = seeding.torch_generator(5, "x", 1)
    b = seeding.torch_generator(5, "x", 1)
    import torch

    assert torch.equal(torch.randn(4, generator=a), torch.randn(4, generator=b))


def test_shards_cover_every_item_once():
    names = shards.shard_names(103, 10)
    assert names[0] == "00000" and names[-1] == "00010" and len(names) == 11
    covered = [i for s in names for i in shards.shard_range(s, 103, 10)]
    assert covered == list(range(103))
    with pytest.raises(ValueError):
        shards.shard_range("00011", 103, 10)


def test_results_root_is_counted_not_searched():
    assert shards.results_root("plots/plots/packing_trace.png", 1) == "plots"
    assert (
        shards.results_root("/scratch/x/results/aligned/shard-00001.parquet", 1)
        == "/scratch/x/results"
    )
    assert shards.results_root("out/dataset.parquet", 0) == "out"


def test_manifest_round_trip_with_metadata(tmp_path):
    emb = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    path = tmp_path / "g.parquet"
    manifests.write_manifest(
        path,
        {
            "index": [0, 1, 2],
            "container": ["a", "a", "b"],
            "row": [0, 1, 0],
            "seed": [1, 2, 3],
            "face_prob": [0.99, 1.0, np.nan],
            "landmarks": np.zeros((3, 10)),
            "embedding": emb,
        },
        manifests.gallery_schema(8),
        {"backends": {"gallery": "ldm"}, "config_hash": "abc"},
    )
    schema = pq.read_schema(path)
    assert schema.field("embedding").type == manifests.embedding_type(8)
    np.testing.assert_array_equal(manifests.read_embeddings(path), emb)
    meta = manifests.read_meta(path)
    assert (
        meta["backends"] == {"gallery": "ldm"} and meta["config_hash"] == "abc" and meta["version"]
    )


def test_manifest_rejects_wrong_columns(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        manifests.write_manifest(
            tmp_path / "x.parquet", {"index": [0]}, manifests.gallery_schema(4)
        )
    with pytest.raises(ValueError, match="shape"):
        manifests.write_manifest(
            tmp_path / "x.parquet",
            {
                "index": [0],
                "container": ["a"],
                "row": [0],
                "seed": [0],
                "face_prob": [1.0],
                "landmarks": np.zeros((1, 10)),
                "embedding": np.zeros((1, 3)),
            },
            manifests.gallery_schema(4),
        )


def _validated(**overrides):
    """The demo config's settings (the schema's defaults for keys it does not set)."""
    from hyperface.settings import Settings

    return Settings.from_section(demo_config(**overrides))


def test_demo_config_is_consistent():
    assert config_errors(_validated()) == []


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"packing.n_identities": 100}, "packing.n_identities"),
        ({"packing.batch_size": 1000}, "packing.batch_size"),
        ({"evaluation.holdout_identities": 40}, "evaluation.holdout_identities"),
        ({"evaluation.benchmarks": {"holdout": "x.bin"}}, "evaluation.benchmarks"),
        ({"training.gpus": 3}, "training.batch_size"),
        # real Arc2Face only understands its own ArcFace space
        (
            {"generation.generator": "arc2face", "generation.weights": "resources/weights/a2f"},
            "embedder.backend",
        ),
        ({"quality.judge.backend": "sface"}, "quality.judge.backend"),  # the embedder may not judge
        (
            {"training.partial_fc": True, "training.diversity_weight": 0.1},
            "training.diversity_weight",
        ),
        ({"training.sample_rate": 0.2}, "training.sample_rate"),
        # MobileStyleGAN's identities start from the gallery's faces, one each
        ({"gallery.generator": "stylegan2"}, "gallery.generator mobilestylegan"),
        ({"gallery.size": 30}, "gallery.size"),
    ],
)
def test_cross_key_errors_name_the_key(overrides, key):
    errors = config_errors(_validated(**overrides))
    assert errors and key in errors[0]


def test_paper_weights_make_a_non_commercial_dataset():
    import yaml

    from hyperface.reports.cards import models_used
    from hyperface.reports.licences import licence_rows, licence_table, most_restrictive
    from hyperface.settings import Settings

    from .conftest import REPO

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    rows = licence_rows(models_used(Settings.from_section(paper), "resources/tiny"))
    assert [lic.model.split(" ")[0] for _, _, lic in rows] == [
        "StyleGAN2",
        "ArcFace",
        "Arc2Face",
        "Stable",
        "MTCNN",
        "dlib",
        "YuNet",
    ]
    assert most_restrictive(rows).startswith("Non-commercial")
    assert "NVIDIA Source Code License-NC" in licence_table(rows)
    demo = licence_rows(models_used(Settings.from_section(demo_config()), "resources/tiny"))
    # the demo's identities are MobileStyleGAN's too: its licence binds their images
    assert [lic.model.split(" ")[0] for _, _, lic in demo[:3]] == [
        "MobileStyleGAN",
        "SFace",
        "MobileStyleGAN",
    ]
    assert most_restrictive(demo).startswith(
        "Non-commercial"
    )  # MobileStyleGAN derives from StyleGAN2


def test_pair_histogram_samples_pairs_past_its_budget():
    """A fixed cost at scale: past max_pairs, the pairs among a random subset of rows."""
    from hyperface.quality.statistics import pair_histogram

    x = np.random.default_rng(0).normal(size=(2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact, drawn = pair_histogram(x), pair_histogram(x, max_pairs=500_000)
    assert exact.sum() == 2000 * 1999 // 2 and drawn.sum() == 1000 * 999 // 2  # 1,000 rows drawn
    assert np.abs(exact / exact.sum() - drawn / drawn.sum()).max() < 0.003
