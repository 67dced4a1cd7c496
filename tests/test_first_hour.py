"""A user's first hour, in units: config problems listed at once, inputs checked before any job,
content stamps that follow content and not times, broken outputs named."""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pytest
import yaml

from hyperface.preflight import External, named_inputs, problems
from hyperface.settings import Settings, schema
from hyperface.storage import manifests
from hyperface.storage.lineage import DigestCache, fingerprint
from hyperface.storage.readable import UnreadableOutput
from hyperface.storage.stamps import stamp, stamp_path
from hyperface.validation import config_problems

from .conftest import REPO, demo_config


def test_every_config_problem_at_once_one_line_each_with_the_nearest_key():
    config = demo_config(
        **{"training.epochs": 3.0, "training.lr_gama": 0.1, "packing.optimizer": "sgd"}
    )
    config["traning"] = {}
    found = config_problems(config, schema())
    assert found == [
        "packing.optimizer: 'sgd' is not one of ['adam', 'adamw', 'rmsprop']",
        "training.epochs: 3.0 is not an integer (write it without a decimal point)",
        "training.lr_gama: unknown key; did you mean training.lr_gamma?",
        "traning: unknown key; did you mean training?",
    ]


def test_text_from_the_command_line_is_read_as_the_number_it_spells():
    """--config 'packing={"n_identities": 50000}' hands the value over as text."""
    config = {"packing": {"n_identities": "50000", "lr": "0.02", "batch_size": "null"},
              "dataset": {"keep_undetected": "true"}, "seed": "x"}  # fmt: skip
    found = config_problems(config, schema())
    assert config["packing"] == {"n_identities": 50000, "lr": 0.02, "batch_size": None}
    assert config["dataset"]["keep_undetected"] is True
    assert found == ["seed: 'x' is not of type integer"]


def test_the_shipped_configs_have_no_problem():
    for name in ("config.yaml", "paper.yaml", "large.yaml"):
        assert config_problems(yaml.safe_load((REPO / "config" / name).read_text()), schema()) == []


def test_inputs_are_checked_for_what_their_loader_needs(tmp_path):
    unet = tmp_path / "arc2face"
    unet.mkdir()
    (unet / "config.json").write_text("{}")
    bin_ok, bin_bad = tmp_path / "lfw.bin", tmp_path / "cfp.bin"
    bin_ok.write_bytes(b"\x80\x04rest")
    bin_bad.write_text("not a pickle")
    found = problems([
        External(str(unet), "generation.weights", "arc2face_unet", "fetch it"),
        External(str(bin_ok), "evaluation.benchmarks.lfw", "benchmark"),
        External(str(bin_bad), "evaluation.benchmarks.cfp", "benchmark"),
        External(str(tmp_path / "none"), "gallery.weights", "stylegan2"),
    ])  # fmt: skip
    assert found == [
        f"generation.weights: {unet} has no diffusion_pytorch_model.safetensors or "
        "diffusion_pytorch_model.bin (fetch it)",
        f"evaluation.benchmarks.cfp: {bin_bad} is not an insightface .bin (a pickle)",
        f"gallery.weights: {tmp_path / 'none'} is missing",
    ]


def test_the_paper_config_names_every_real_input():
    paper = Settings.from_section(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
    settings = {item.setting for item in named_inputs(paper)}
    assert {"gallery.weights", "embedder.weights", "generation.weights", "generation.base_model",
            "evaluation.benchmarks.lfw", "evaluation.benchmarks.agedb_30"} <= settings  # fmt: skip


def test_a_stamp_follows_content_not_times(tmp_path):
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "unet.bin").write_bytes(b"a" * 100)
    folder, cache = tmp_path / "stamps", DigestCache(tmp_path / "stamps" / "digests.json")
    first = stamp(weights, folder, cache, built=False)
    assert first == stamp_path(weights, folder) and first.read_text().strip() == fingerprint(
        weights
    )
    # first sight: as old as the input, so outputs already made from it stay up to date
    assert first.stat().st_mtime_ns == (weights / "unet.bin").stat().st_mtime_ns
    before = first.stat().st_mtime_ns
    os.utime(weights / "unet.bin")  # touched, same bytes: the stamp stays as it is
    stamp(weights, folder, cache, built=False)
    assert first.stat().st_mtime_ns == before
    old = time.time() - 3600
    (weights / "unet.bin").write_bytes(b"b" * 100)  # new content with an old time (cp -p)
    os.utime(weights / "unet.bin", (old, old))
    stamp(weights, folder, cache, built=False)
    assert first.read_text().strip() == fingerprint(weights)
    assert first.stat().st_mtime_ns > before  # now: the jobs that used it re-run


def test_the_digest_cache_is_keyed_by_size_and_time(tmp_path):
    file = tmp_path / "f.onnx"
    file.write_bytes(b"x" * 10)
    cache = DigestCache(tmp_path / "digests.json")
    digest = cache.digest(file)
    cache.save()
    again = DigestCache(tmp_path / "digests.json")
    assert again.digest(file) == digest and not again.changed
    file.write_bytes(b"y" * 11)
    assert again.digest(file) != digest and again.changed


def test_a_truncated_manifest_is_named_with_its_fix(tmp_path):
    path = tmp_path / "aligned" / "shard-00000.parquet"
    columns = {"identity": np.arange(100), "embedding": np.ones((100, 4), np.float32)}
    schema = pa.schema([("identity", pa.int64()), ("embedding", manifests.embedding_type(4))])
    manifests.write_manifest(path, columns, schema)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for read in (manifests.read_manifest, manifests.read_meta, manifests.read_embeddings):
        with pytest.raises(UnreadableOutput, match=f"{path}: .*delete it and run snakemake again"):
            read(path)


def test_each_config_file_has_its_own_results_folder():
    from hyperface.storage.shards import default_results

    assert default_results([]) == default_results(["config/config.yaml"]) == "results"
    assert default_results(["config/config.yaml", "beta.yaml"]) == "results"  # an overlay
    assert default_results(["/x/config/paper.yaml", "beta.yaml"]) == "results-paper"


def test_image_grids_have_borders_and_labels(tmp_path):
    from PIL import Image

    from hyperface.reports.figures import sample_grid

    red = np.full((50, 50, 3), (255, 0, 0), np.uint8)
    path = tmp_path / "grid.png"
    sample_grid([[red, red, red], [red]], path, size=40, row_labels=["identity 7", "identity 9"],
                cell_labels=[["#0", "#1", "#2"], ["#0"]])  # fmt: skip
    grid = np.asarray(Image.open(path).convert("RGB"))
    left = grid.shape[1] - 4 - 3 * 44  # the label column
    assert grid.shape[0] == 4 + 2 * 44 and left > 20
    assert (grid[:, left : left + 4] == 255).all()  # a white border between label and cells
    assert (grid[4 + 40 : 4 + 44, left + 4 :] == 255).all()  # and between the rows
    assert (grid[10:30, :left] < 128).any()  # the identity label is drawn
    assert (grid[4 + 44 + 5, left + 4 + 44 + 5] == 255).all()  # the second row's missing cell
