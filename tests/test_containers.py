"""Shard containers (images inside Parquet manifests), the training loader's order, and the
insightface .rec/.idx export checked byte for byte against the published RecordIO layout."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hyperface.recognition.training import epoch_order
from hyperface.storage import manifests, recordio
from hyperface.storage.containers import (
    ROW_GROUP_ROWS,
    Container,
    Containers,
    Encoding,
    decode,
    encode,
    image_cell,
    load_shards,
)

SCHEMA = pa.schema([("identity", pa.int64()), ("image", manifests.IMAGE)])


def _images(n: int, size: int = 24) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_container_random_access_across_row_groups(tmp_path):
    images = _images(40)
    cells = [
        None if i == 5 else image_cell(im, f"{i:07d}/0000", Encoding("png"))
        for i, im in enumerate(images)
    ]
    path = tmp_path / "shard-00000.parquet"
    with manifests.ManifestWriter(path, SCHEMA) as writer:  # written in two parts, as shard jobs do
        writer.write({"identity": range(25), "image": cells[:25]})
        writer.write({"identity": range(25, 40), "image": cells[25:]})
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [16, 9, 15]
    assert json.loads(pq.read_schema(path).metadata[b"huggingface"])["info"]["features"][
        "image"
    ] == {"_type": "Image"}
    store = Container(path, cache_groups=1)
    for row in (39, 0, 17, 16, 24, 25):
        np.testing.assert_array_equal(store.images([row])[0], images[row])  # PNG: lossless
    assert store.encoded([5]) == [None] and store.cells([6])[0][1] == "0000006/0000.png"
    with pytest.raises(ValueError, match="row 5 has no image"):
        store.images([5])
    with pytest.raises(IndexError, match="row 40"):
        store.encoded([40])
    frame = load_shards([path], ["identity", "has_image", "container", "row"], tmp_path)
    assert frame["has_image"].tolist() == [i != 5 for i in range(40)]
    assert set(frame["container"]) == {"shard-00000.parquet"} and frame["row"].tolist() == list(
        range(40)
    )


def test_one_row_group_cache_bounds_memory_across_shards(tmp_path):
    """A loader touching many shards keeps at most ``cache_groups`` row groups, not that many
    each."""
    images = _images(32)
    for shard in ("a", "b"):
        manifests.write_manifest(
            tmp_path / f"{shard}.parquet",
            {
                "identity": range(32),
                "image": [image_cell(im, f"{i}", Encoding("png")) for i, im in enumerate(images)],
            },
            SCHEMA,
        )
    store = Containers(tmp_path, cache_groups=2)
    for name, row in (("a.parquet", 0), ("a.parquet", 20), ("b.parquet", 3), ("b.parquet", 31)):
        np.testing.assert_array_equal(store.images([name], [row])[0], images[row])
    assert len(store.cache.groups) == 2 and store.cache.get((tmp_path / "b.parquet", 1)) is not None


def test_lossy_encodings_stay_close():
    image = np.tile(
        np.linspace(0, 255, 64).astype(np.uint8)[None, :, None], (64, 1, 3)
    )  # a smooth ramp
    for fmt in ("jpeg", "webp"):
        enc = Encoding(fmt, 95)
        assert enc.suffix in (".jpg", ".webp")
        assert np.abs(decode(encode(image, enc)).astype(int) - image).mean() < 2
    with pytest.raises(ValueError, match="format"):
        Encoding("gif")


def test_epoch_order_streams_row_groups_and_is_a_function_of_seed_and_epoch():
    blocks = np.repeat(np.arange(20), ROW_GROUP_ROWS)  # 20 row groups of 16 images
    order = epoch_order(blocks, seed=3, epoch=1, window=64)
    assert sorted(order.tolist()) == list(range(len(blocks)))
    np.testing.assert_array_equal(order, epoch_order(blocks, seed=3, epoch=1, window=64))
    assert not np.array_equal(order, epoch_order(blocks, seed=3, epoch=2, window=64))
    # a window of 64 images reads 4 row groups: what a loader keeps in memory
    assert all(len(set(blocks[order[i : i + 64]])) == 4 for i in range(0, len(order), 64))
    full = epoch_order(blocks, seed=3, epoch=1, window=len(blocks))  # one window: a full shuffle
    assert len(set(blocks[full[:64]])) > 4


def _record(payload: bytes) -> bytes:
    """One record in one part, by the published layout: magic, length, payload, zero padding."""
    return struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4)


def test_rec_file_matches_the_published_layout_byte_for_byte(tmp_path):
    images = [b"\xff\xd8jpeg-one", b"\x89PNG-two!", b"three"]  # any encoded bytes
    labels = [0, 0, 1]
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    assert recordio.write_rec(rec, idx, images, labels) == 6
    header = struct.Struct("<IfQQ")  # MXNet IRHeader: flag, label, id, id2
    payloads = [
        header.pack(2, 0.0, 0, 0) + np.float32([4, 6]).tobytes(),  # images 1-3, identities 4-5
        *(
            header.pack(0, float(label), key, 0) + data
            for key, (data, label) in enumerate(zip(images, labels, strict=True), start=1)
        ),
        header.pack(2, 0.0, 4, 0) + np.float32([1, 3]).tobytes(),  # identity 0: images [1, 3)
        header.pack(2, 0.0, 5, 0) + np.float32([3, 4]).tobytes(),
    ]
    expected = b"".join(_record(p) for p in payloads)
    assert rec.read_bytes() == expected
    offsets = np.cumsum([0] + [len(_record(p)) for p in payloads[:-1]])
    assert idx.read_text() == "".join(f"{k}\t{o}\n" for k, o in enumerate(offsets))
    index = recordio.read_index(idx)
    with open(rec, "rb") as f:
        label, key, data = recordio.unpack(recordio.read_record(f, index[2]))
        assert (label, key, data) == (0.0, 2, images[1])
        label, _, _ = recordio.unpack(recordio.read_record(f, index[0]))
        np.testing.assert_array_equal(label, [4, 6])


def test_rec_record_holding_the_magic_is_split_as_dmlc_core_splits_it():
    magic = struct.pack("<I", 0xCED7230A)
    payload = b"h" * 24 + b"\x01\x02\x03\x04" + magic + b"xyz"  # the magic at aligned offset 28
    lrec = struct.Struct("<I")
    expected = (
        magic
        + lrec.pack(1 << 29 | 28)
        + payload[:28]  # first part, magic left out
        + magic
        + lrec.pack(3 << 29 | 3)
        + b"xyz"
        + b"\0"
    )  # last part, padded to 4
    framed = recordio.frame(payload)
    assert framed == expected
    assert recordio.read_record(io.BytesIO(framed), 0) == payload
    with pytest.raises(ValueError, match="sorted by label"):
        recordio.write_rec("x.rec", "x.idx", [b"a", b"b"], [1, 0])
