"""Images inside the shard manifests: Hugging Face's Parquet image layout, one file per shard.

A shard manifest's ``image`` column is a struct of the encoded ``bytes`` and a ``path`` (a name
such as ``0004711/0003.png``, what an export calls the file), with Hugging Face ``datasets``'
feature metadata, so ``datasets.Dataset.from_parquet(shard)`` decodes it as images and pandas,
polars or DuckDB read the same file. Images are written in row groups of
:data:`ROW_GROUP_ROWS` rows, so reading one image reads at most that many encoded images, and the
other columns (statistics, embeddings) read without touching image bytes. The measurements behind
this choice (against WebDataset tar shards) are in the README; ``python -m
hyperface.bench.containers`` repeats them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hyperface.settings import Encoding
from hyperface.storage.readable import reading

IMAGE_COLUMN = "image"
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
ROW_GROUP_ROWS = 16


def encode(image: np.ndarray, encoding: Encoding) -> bytes:
    """RGB uint8 (H, W, 3) -> encoded bytes (deterministic for one OpenCV build)."""
    flags = {
        "png": [cv2.IMWRITE_PNG_COMPRESSION, 1],
        "jpeg": [cv2.IMWRITE_JPEG_QUALITY, encoding.quality],
        "webp": [cv2.IMWRITE_WEBP_QUALITY, encoding.quality],
    }[encoding.format]
    ok, data = cv2.imencode(encoding.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), flags)
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as {encoding.format}")
    return data.tobytes()


def decode(data: bytes) -> np.ndarray:
    """Encoded bytes (any format OpenCV reads) -> RGB uint8 (H, W, 3)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {len(data)} bytes as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_cell(image: np.ndarray | None, name: str, encoding: Encoding) -> dict | None:
    """One value of an ``image`` column: the encoded bytes and the file name (None: no image)."""
    if image is None:
        return None
    return {"bytes": encode(image, encoding), "path": f"{name}{encoding.suffix}"}


def hf_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """Hugging Face ``datasets`` feature metadata naming the image column (others are inferred)."""
    if not has_images(schema):
        return {}
    features = {"info": {"features": {IMAGE_COLUMN: {"_type": "Image"}}}}
    return {b"huggingface": json.dumps(features).encode()}


def has_images(schema: pa.Schema) -> bool:
    return IMAGE_COLUMN in schema.names and schema.field(IMAGE_COLUMN).type == IMAGE_TYPE


class GroupCache:
    """The most recently read row groups' image columns, up to ``size`` of them, whichever
    shards they come from (a reader that walks rows in a shuffled window reads every row group
    once, and its memory is bounded however many shards it touches)."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.groups: OrderedDict[tuple[Path, int], pa.StructArray] = OrderedDict()

    def get(self, key: tuple[Path, int]) -> pa.StructArray | None:
        if key in self.groups:
            self.groups.move_to_end(key)
        return self.groups.get(key)

    def put(self, key: tuple[Path, int], column: pa.StructArray) -> None:
        self.groups[key] = column
        if len(self.groups) > self.size:
            self.groups.popitem(last=False)


class Container:
    """Random access to the images of one shard manifest, through a row-group cache (its own of
    ``cache_groups`` groups, or one shared with other containers)."""

    def __init__(self, path: str | Path, cache_groups: int = 8, cache: GroupCache | None = None):
        self.path = Path(path)
        # the file is opened per row group read: a loader that touches a thousand shards holds
        # no thousand descriptors
        with reading(self.path):
            self.meta = pq.read_metadata(self.path)
        sizes = [self.meta.row_group(g).num_rows for g in range(self.meta.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.cache = cache if cache is not None else GroupCache(cache_groups)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _group(self, g: int) -> pa.StructArray:
        column = self.cache.get((self.path, g))
        if column is None:
            with reading(self.path), pq.ParquetFile(self.path, metadata=self.meta) as file:
                column = file.read_row_group(g, columns=[IMAGE_COLUMN]).column(0).combine_chunks()
            self.cache.put((self.path, g), column)
        return column

    def cells(self, rows: Iterable[int]) -> list[tuple[bytes, str] | None]:
        """(encoded bytes, file name) of ``rows`` (None where a row has no image), in the order
        asked."""
        out = []
        for row in rows:
            if not 0 <= row < len(self):
                raise IndexError(f"{self.path}: row {row} out of range (0-{len(self) - 1})")
            g = int(np.searchsorted(self.starts, row, side="right")) - 1
            cell = self._group(g)[int(row - self.starts[g])]
            out.append((cell["bytes"].as_py(), cell["path"].as_py()) if cell.is_valid else None)
        return out

    def encoded(self, rows: Iterable[int]) -> list[bytes | None]:
        return [None if cell is None else cell[0] for cell in self.cells(rows)]

    def images(self, rows: Iterable[int]) -> list[np.ndarray]:
        """Decoded RGB images of ``rows``; a row without an image is an error."""
        rows = list(rows)
        images = []
        for row, data in zip(rows, self.encoded(rows), strict=True):
            if data is None:
                raise ValueError(f"{self.path}: row {row} has no image")
            images.append(decode(data))
        return images


class Containers:
    """Images addressed by (container path, row) across many shards, opened on first use; one
    cache of ``cache_groups`` row groups serves them all."""

    def __init__(self, root: str | Path, cache_groups: int = 8):
        self.root, self.cache = Path(root), GroupCache(cache_groups)
        self.open: dict[str, Container] = {}

    def container(self, name: str) -> Container:
        if name not in self.open:
            self.open[name] = Container(self.root / name, cache=self.cache)
        return self.open[name]

    def images(self, names: Sequence[str], rows: Sequence[int]) -> list[np.ndarray]:
        return [self.container(n).images([int(r)])[0] for n, r in zip(names, rows, strict=True)]

    def encoded(self, names: Sequence[str], rows: Sequence[int]) -> list[bytes | None]:
        return [self.container(n).encoded([int(r)])[0] for n, r in zip(names, rows, strict=True)]

    def cells(self, names: Iterable[str], rows: Iterable[int]) -> Iterator[tuple[bytes, str]]:
        """(stored bytes, file name) of each (container, row), streamed in order: exports copy
        the bytes as they are, so exported pixels are the ones training reads."""
        for name, row in zip(names, rows, strict=True):
            yield self.container(name).cells([int(row)])[0]


def has_image(path: str | Path) -> np.ndarray:
    """Which rows of a shard manifest hold an image, without reading image bytes: the Parquet
    statistics count each row group's missing images, and only row groups with some are read."""
    with reading(path):
        file = pq.ParquetFile(path)
    meta = file.metadata
    leaf = (
        [meta.row_group(0).column(i).path_in_schema for i in range(meta.num_columns)].index(
            f"{IMAGE_COLUMN}.path"
        )
        if meta.num_row_groups
        else 0
    )
    parts = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(leaf).statistics
        if stats is not None and stats.has_null_count and stats.null_count == 0:
            parts.append(np.ones(meta.row_group(g).num_rows, bool))
        else:
            column = file.read_row_group(g, columns=[IMAGE_COLUMN]).column(0)
            parts.append(column.is_valid().to_numpy(zero_copy_only=False))
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def load_shards(
    paths: Sequence[str | Path], columns: list[str], root: str | Path | None = None
) -> pd.DataFrame:
    """Shard manifests' ``columns`` as one frame, never their image bytes. Besides the stored
    columns: ``has_image`` (the row has an image), and with ``root`` each image's address,
    ``container`` (the shard, relative to ``root``) and ``row``."""
    stored = [c for c in columns if c not in ("has_image", "container", "row")]
    parts = []
    for path in paths:
        with reading(path):
            frame = pq.read_table(path, columns=stored).to_pandas()
        if "has_image" in columns:
            frame["has_image"] = has_image(path)
        if root is not None:
            frame["container"] = str(Path(path).relative_to(root))
            frame["row"] = np.arange(len(frame))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)[columns]
