"""Lineage hashes, resumable state keyed by them, and per-identity resume of alignment."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pyarrow as pa
import pytest

from hyperface.storage import lineage, manifests
from hyperface.storage.containers import Container, Encoding, image_cell
from hyperface.storage.resume import PartialShard, claim_state


def test_fingerprints_follow_content_not_place_or_time(tmp_path):
    a = tmp_path / "a" / "weights.bin"
    a.parent.mkdir()
    a.write_bytes(b"x" * 1000)
    b = tmp_path / "b" / "weights.bin"
    b.parent.mkdir()
    shutil.copy(a, b)  # a copy elsewhere, with another mtime
    assert lineage.fingerprint(a) == lineage.fingerprint(b)
    b.write_bytes(b"x" * 999 + b"y")
    assert lineage.fingerprint(a) != lineage.fingerprint(b)
    # folders: names and contents count, hidden download caches do not
    (tmp_path / "a" / ".cache").mkdir()
    (tmp_path / "a" / ".cache" / "etag").write_text("2026-11-23")
    before = lineage.fingerprint(tmp_path / "a")
    (tmp_path / "a" / ".cache" / "etag").write_text("2026-11-24")
    assert lineage.fingerprint(tmp_path / "a") == before
    (tmp_path / "a" / "config.json").write_text("{}")
    assert lineage.fingerprint(tmp_path / "a") != before
    with pytest.raises(FileNotFoundError, match="absent"):
        lineage.fingerprint(tmp_path / "absent")


def test_safetensors_fingerprint_ignores_the_header_order(tmp_path):
    import torch
    from safetensors.torch import save_file

    tensors = {"b": torch.ones(3), "a": torch.zeros(2)}
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={"one": "1", "two": "2"})
    raw = (tmp_path / "x.safetensors").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    reordered = (
        json.dumps(dict(reversed(list(header.items()))), separators=(",", ":")).encode().ljust(size)
    )
    (tmp_path / "y.safetensors").write_bytes(raw[:8] + reordered + raw[8 + size :])
    assert (tmp_path / "x.safetensors").read_bytes() != (tmp_path / "y.safetensors").read_bytes()
    assert lineage.fingerprint(tmp_path / "x.safetensors") == lineage.fingerprint(
        tmp_path / "y.safetensors"
    )
    save_file(
        {"b": torch.ones(3), "a": torch.ones(2)},
        str(tmp_path / "z.safetensors"),
        metadata={"one": "1", "two": "2"},
    )
    assert lineage.fingerprint(tmp_path / "z.safetensors") != lineage.fingerprint(
        tmp_path / "x.safetensors"
    )


def test_a_change_anywhere_in_a_large_file_is_seen(tmp_path):
    data = bytearray(np.random.default_rng(0).integers(0, 255, 9 << 20, dtype=np.uint8).tobytes())
    path = tmp_path / "unet.bin"
    path.write_bytes(data)
    base = lineage.fingerprint(path)
    for offset in (0, len(data) // 2 + 12345, len(data) - 1):
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        assert lineage.fingerprint(path) != base


def test_lineage_changes_with_settings_and_with_any_input(tmp_path):
    gallery = tmp_path / "gallery.parquet"
    manifests.write_manifest(
        gallery,
        {
            "index": [0],
            "container": ["a"],
            "row": [0],
            "seed": [1],
            "face_prob": [1.0],
            "landmarks": np.zeros((1, 10)),
            "embedding": np.ones((1, 4)),
        },
        manifests.gallery_schema(4),
        lineage.lineage_meta("gallery", [], {}),
    )
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"onnx")
    meta = lineage.lineage_meta("pack", {"alpha": 0.5}, {"gallery": gallery, "weights": weights})
    assert meta["inputs"]["gallery"]["lineage"] == manifests.read_meta(gallery)["lineage"]
    assert (
        lineage.lineage_meta("pack", {"alpha": 0.5}, {"gallery": gallery, "weights": weights})
        == meta
    )
    assert (
        lineage.lineage_meta("pack", {"alpha": 0.1}, {"gallery": gallery, "weights": weights})[
            "lineage"
        ]
        != meta["lineage"]
    )
    weights.write_bytes(b"other onnx")
    assert (
        lineage.lineage_meta("pack", {"alpha": 0.5}, {"gallery": gallery, "weights": weights})[
            "lineage"
        ]
        != meta["lineage"]
    )
    # a checkpoint name depends on the lineage and on the device type, not on the device index
    assert lineage.state_name("ckpt", meta, "cuda:0") == lineage.state_name("ckpt", meta, "cuda:1")
    assert lineage.state_name("ckpt", meta, "cuda") != lineage.state_name("ckpt", meta, "cpu")


def test_claim_state_removes_checkpoints_of_other_lineages(tmp_path):
    old = claim_state(tmp_path, "checkpoint", {"lineage": "aaaa"}, "cpu")
    old.write_bytes(b"state")
    assert claim_state(tmp_path, "checkpoint", {"lineage": "aaaa"}, "cpu") == old and old.exists()
    new = claim_state(tmp_path, "checkpoint", {"lineage": "bbbb"}, "cpu")
    assert new != old and not old.exists()


SCHEMA = pa.schema([("identity", pa.int64()), ("image", manifests.IMAGE)])
PNG = Encoding("png")


def _cell(identity: int) -> dict:
    return image_cell(np.full((8, 8, 3), identity, np.uint8), f"{identity:07d}/0000", PNG)


def test_partial_shard_resumes_only_its_own_lineage(tmp_path):
    out = tmp_path / "generated" / "shard-00000.parquet"
    first = PartialShard(tmp_path, out, SCHEMA, {"lineage": "aaaa"}, "cpu")
    for identity in (3, 4):
        first.commit(identity, {"identity": [identity], "image": [_cell(identity)]})
    assert PartialShard(tmp_path, out, SCHEMA, {"lineage": "aaaa"}, "cpu").done(range(3, 6)) == [
        3,
        4,
    ]
    with pytest.raises(RuntimeError, match="not complete"):
        first.finish(range(3, 6), out)
    other = PartialShard(tmp_path, out, SCHEMA, {"lineage": "bbbb"}, "cpu")
    assert other.done(range(3, 6)) == [] and not first.dir.exists()
    for identity in (3, 4, 5):
        other.commit(identity, {"identity": [identity], "image": [_cell(identity)]})
    other.finish(range(3, 6), out)
    assert manifests.read_manifest(out, ["identity"])["identity"].tolist() == [3, 4, 5]
    assert manifests.read_meta(out)["lineage"] == "bbbb"
    assert [im[0, 0, 0] for im in Container(out).images(range(3))] == [3, 4, 5]
    assert not (tmp_path / "partial").exists()


@pytest.fixture
def generated_shard(tmp_path, tiny):
    """Three identities x two noise images, their manifest and random references."""
    rng = np.random.default_rng(0)
    root = tmp_path / "results"
    rows = {"identity": [], "sample": [], "image": [], "seed": [], "condition": []}
    for identity in range(3):
        for sample in range(2):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            rows["identity"].append(identity)
            rows["sample"].append(sample)
            rows["image"].append(image_cell(image, f"{identity:07d}/{sample:04d}", PNG))
            rows["seed"].append(0)
            rows["condition"].append(np.ones(512, np.float32))
    n = len(rows["identity"])
    manifests.write_manifest(
        root / "generated/shard-00000.parquet",
        {
            **rows,
            "condition": np.stack(rows["condition"]),
            "redraws": [0] * n,
            "identity_cos": [np.nan] * n,
            "realised_cos": [np.nan] * n,
        },  # fmt: skip
        manifests.generated_schema(512),
    )
    refs = rng.normal(size=(3, 512)).astype(np.float32)
    manifests.write_manifest(
        root / "references.parquet",
        {
            "identity": np.arange(3),
            "embedding": refs / np.linalg.norm(refs, axis=1, keepdims=True),
            "init_index": np.arange(3),
            "nearest_gallery": np.arange(3),
            "nearest_gallery_cos": np.ones(3),
            "nearest_identity_cos": np.zeros(3),
        },
        manifests.references_schema(512),
    )
    return root


def test_alignment_interrupted_mid_shard_keeps_finished_identities(
    generated_shard, tiny, monkeypatch, caplog
):
    from hyperface.settings import AlignmentSettings, EmbedderSettings, Encoding
    from hyperface.stages import align_shard as align

    root = generated_shard
    settings = {
        "alignment": AlignmentSettings(fallback="center_crop", batch_size=4),
        "embedder": EmbedderSettings(
            backend="insightface", weights=str(tiny["arcface"]), batch_size=8
        ),
        "device": "cpu",
    }

    def run(out_name: str) -> str:
        out = root / f"{out_name}/shard-00000.parquet"
        align.align_shard(
            root / "generated/shard-00000.parquet",
            root / "references.parquet",
            out,
            root,
            encoding=Encoding("png", 95),
            **settings,
        )
        return out

    straight = run("straight")
    real = align.align_identity
    calls = []

    def crash_on_the_third(group, *args):
        calls.append(int(group["identity"].iloc[0]))
        if len(calls) == 3:
            raise RuntimeError("node lost")
        return real(group, *args)

    monkeypatch.setattr(align, "align_identity", crash_on_the_third)
    with pytest.raises(RuntimeError, match="node lost"):
        run("aligned")
    monkeypatch.setattr(align, "align_identity", real)
    with caplog.at_level(logging.INFO):
        resumed = run("aligned")
    assert "kept 2 identities already aligned, aligning 1" in caplog.text
    a, b = manifests.read_manifest(straight), manifests.read_manifest(resumed)
    for column in [
        "identity",
        "sample",
        "status",
        "face_prob",
        "reference_cos",
        "nearest_other_cos",
    ]:
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy())
    np.testing.assert_array_equal(np.stack(a["embedding"]), np.stack(b["embedding"]))
    assert a["image"].tolist() == b["image"].tolist()  # the crops' bytes and names
