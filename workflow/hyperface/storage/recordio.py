"""insightface ``.rec``/``.idx`` files: MXNet's RecordIO, what arcface_torch (with or without DALI)
and most face-recognition training code read.

The layout, as dmlc-core's ``RecordIOWriter`` writes it: every record is a little-endian uint32
magic ``0xced7230a``, a uint32 ``cflag << 29 | length``, the payload and zero padding to a
multiple of 4 bytes. A payload that holds the magic at a 4-byte-aligned offset is split there into
parts (cflag 1 first, 2 middle, 3 last; 0 for a record in one part) and the magic itself is left
out; readers put it back. A payload is MXNet's ``IRHeader`` (uint32 flag, float32 label, uint64
id, uint64 id2) and the encoded image; with ``flag`` > 0 the label is the ``flag`` float32 values
that follow the header. The ``.idx`` file lists ``key<TAB>byte offset`` per record.

insightface's face datasets add record 0 (flag 2, label = [first identity record, end]) and, after
the images 1..N, one record per identity (flag 2, label = [first image, end)): arcface_torch's
``MXFaceDataset`` reads images 1..label[0]-1 of record 0.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

MAGIC = 0xCED7230A
HEADER = struct.Struct("<IfQQ")  # MXNet IRHeader: flag, label, id, id2
_MAGIC_BYTES = struct.pack("<I", MAGIC)


def pack(label: float | Sequence[float], data: bytes, record_id: int) -> bytes:
    """An IRHeader and ``data`` as MXNet's ``recordio.pack`` builds them."""
    if isinstance(label, (int, float, np.integer, np.floating)):
        return HEADER.pack(0, float(label), record_id, 0) + data
    values = np.asarray(label, np.float32)
    return HEADER.pack(values.size, 0.0, record_id, 0) + values.tobytes() + data


def unpack(payload: bytes) -> tuple[float | np.ndarray, int, bytes]:
    """(label, record id, data) of a payload; a multi-value label comes back as float32 values."""
    flag, label, record_id, _ = HEADER.unpack_from(payload)
    rest = payload[HEADER.size :]
    if flag:
        return np.frombuffer(rest[: 4 * flag], np.float32).copy(), record_id, rest[4 * flag :]
    return label, record_id, rest


def frame(payload: bytes) -> bytes:
    """One record's bytes on disk (dmlc-core's ``WriteRecord``: split at aligned magics, padded)."""
    if len(payload) >= 1 << 29:
        raise ValueError(f"a RecordIO record holds less than 2^29 bytes, got {len(payload)}")
    out, start, i = [], 0, payload.find(_MAGIC_BYTES)
    while i >= 0:
        if i % 4 == 0:  # only magics at 4-byte-aligned offsets split a record
            out += [
                _MAGIC_BYTES,
                struct.pack("<I", (1 if start == 0 else 2) << 29 | (i - start)),
                payload[start:i],
            ]
            start = i + 4
        i = payload.find(_MAGIC_BYTES, i + 1)
    out += [
        _MAGIC_BYTES,
        struct.pack("<I", (3 if start else 0) << 29 | (len(payload) - start)),
        payload[start:],
    ]
    out.append(b"\0" * (-len(payload) % 4))
    return b"".join(out)


def read_record(f, offset: int) -> bytes:
    """The payload of the record at ``offset`` of the open file ``f`` (parts joined with the
    magic)."""
    f.seek(offset)
    parts = []
    while True:
        magic, lrec = struct.unpack("<II", f.read(8))
        if magic != MAGIC:
            raise ValueError(f"no RecordIO magic at byte {f.tell() - 8}")
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        parts.append(f.read(length))
        f.read(-length % 4)
        if cflag in (0, 3):
            return _MAGIC_BYTES.join(parts)


def write_rec(
    rec: str | Path, idx: str | Path, images: Iterable[bytes], labels: Sequence[int]
) -> int:
    """Encoded ``images`` with their class ``labels`` (sorted: each class's images contiguous) as an
    insightface ``.rec``/``.idx`` pair; returns the number of records written."""
    labels = np.asarray(labels, np.int64)
    if len(labels) and (np.diff(labels) < 0).any():
        raise ValueError("records must be sorted by label (each identity's images contiguous)")
    n, classes = len(labels), np.unique(labels)
    first = np.searchsorted(labels, classes)
    last = np.append(first[1:], n)
    tmp_rec, tmp_idx = Path(f"{rec}.tmp"), Path(f"{idx}.tmp")
    tmp_rec.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp_rec, "wb") as out, open(tmp_idx, "w") as index:

        def put(key: int, payload: bytes) -> None:
            index.write(f"{key}\t{out.tell()}\n")
            out.write(frame(payload))

        put(0, pack([n + 1, n + 1 + len(classes)], b"", 0))
        count = 0
        for key, (data, label) in enumerate(zip(images, labels, strict=True), start=1):
            put(key, pack(float(label), data, key))
            count += 1
        if count != n:
            raise ValueError(f"{count} images for {n} labels")
        for c, (a, b) in enumerate(zip(first, last, strict=True)):
            put(n + 1 + c, pack([a + 1, b + 1], b"", n + 1 + c))
    tmp_rec.replace(rec)
    tmp_idx.replace(idx)
    return n + 1 + len(classes)


def read_index(idx: str | Path) -> dict[int, int]:
    with open(idx) as f:
        return {int(k): int(v) for k, v in (line.split("\t") for line in f if line.strip())}
