"""Parquet manifests: one schema per output, defined here once, with provenance in file metadata.

Embeddings are ``fixed_size_list<float32>[D]`` columns; images live in the shard manifests that
make them (:mod:`hyperface.storage.containers`) and other manifests point at them by (container,
row).
File-level metadata records the package version, the backends used, and the lineage (see
:mod:`hyperface.storage.lineage`): a hash of the settings that produced the file, its inputs'
lineage and
its own. Every Parquet file the workflow writes goes through :func:`write_manifest`: checked
against its schema and written atomically (a killed job never leaves half a file behind).

Columns in :data:`TIMING_COLUMNS` hold wall-clock measurements; they are the only content that
differs between two runs of one config on one machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hyperface import __version__
from hyperface.storage import containers
from hyperface.storage.readable import reading

META_PREFIX = "hyperface."
TIMING_COLUMNS = frozenset({"elapsed_s", "seconds", "images_per_s"})


def embedding_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def _fields(dim: int, *spec: tuple[str, Any]) -> pa.Schema:
    return pa.schema(
        [(name, embedding_type(dim) if typ == "embedding" else typ) for name, typ in spec]
    )


IMAGE = containers.IMAGE_TYPE  # encoded bytes + file name; null where a row has no image


def gallery_shard_schema(dim: int) -> pa.Schema:
    return _fields(
        dim,
        ("index", pa.int64()),
        ("image", IMAGE),
        ("seed", pa.int64()),
        ("face_prob", pa.float32()),
        ("landmarks", pa.list_(pa.float32(), 10)),
        ("embedding", "embedding"),
    )


def gallery_schema(dim: int) -> pa.Schema:
    """The merged gallery: each face's image stays in its shard (``container``, ``row``);
    ``face_prob`` is MTCNN's probability for the face that was embedded (NaN: none found, the
    centre crop was embedded), ``landmarks`` its five points (NaN: none found)."""
    return _fields(
        dim,
        ("index", pa.int64()),
        ("container", pa.string()),
        ("row", pa.int64()),
        ("seed", pa.int64()),
        ("face_prob", pa.float32()),
        ("landmarks", pa.list_(pa.float32(), 10)),
        ("embedding", "embedding"),
    )


def references_schema(dim: int) -> pa.Schema:
    return _fields(
        dim,
        ("identity", pa.int64()),
        ("embedding", "embedding"),
        ("init_index", pa.int64()),
        ("nearest_gallery", pa.int64()),
        ("nearest_gallery_cos", pa.float32()),
        ("nearest_identity_cos", pa.float32()),
    )


def trace_schema() -> pa.Schema:
    return pa.schema(
        [
            ("iteration", pa.int64()),
            ("min_distance", pa.float64()),
            ("mean_nn_distance", pa.float64()),
            ("regulariser", pa.float64()),
            ("lr", pa.float64()),
            ("elapsed_s", pa.float64()),
        ]
    )


def generated_schema(dim: int) -> pa.Schema:
    """``condition``: the embedding an image was drawn for (Arc2Face: the perturbed reference;
    MobileStyleGAN: the identity's anchor face's). MobileStyleGAN only (0 / NaN for Arc2Face):
    ``redraws`` (variants rejected before this one), ``identity_cos`` (its cosine to the anchor)
    and ``realised_cos`` (the anchor's cosine to the packed reference)."""
    return _fields(
        dim,
        ("identity", pa.int64()),
        ("sample", pa.int64()),
        ("image", IMAGE),
        ("seed", pa.int64()),
        ("condition", "embedding"),
        ("redraws", pa.int64()),
        ("identity_cos", pa.float32()),
        ("realised_cos", pa.float32()),
    )


def aligned_schema(dim: int) -> pa.Schema:
    """The aligned crop in ``image`` (null when alignment dropped the image)."""
    return _fields(
        dim,
        ("identity", pa.int64()),
        ("sample", pa.int64()),
        ("redraws", pa.int64()),
        ("image", IMAGE),
        ("status", pa.string()),
        ("face_prob", pa.float32()),
        ("box", pa.list_(pa.float32(), 4)),
        ("landmarks", pa.list_(pa.float32(), 10)),
        ("embedding", "embedding"),
        ("reference_cos", pa.float32()),
        ("nearest_other_cos", pa.float32()),
    )


def dataset_schema() -> pa.Schema:
    """The training set: each image stays in its aligned shard (``container``, ``row``)."""
    return pa.schema(
        [
            ("identity", pa.int64()),
            ("label", pa.int64()),
            ("sample", pa.int64()),
            ("container", pa.string()),
            ("row", pa.int64()),
            ("status", pa.string()),
            ("reference_cos", pa.float32()),
        ]
    )


def eval_schema() -> pa.Schema:
    """Per fold: accuracy at the best squared-L2 threshold of the other folds, and VAL/FAR at the
    threshold interpolated to FAR=1e-3 on them (insightface's protocol)."""
    return pa.schema(
        [
            ("model", pa.string()),
            ("benchmark", pa.string()),
            ("fold", pa.int64()),
            ("threshold", pa.float64()),
            ("accuracy", pa.float64()),
            ("val_threshold", pa.float64()),
            ("val", pa.float64()),
            ("far", pa.float64()),
            ("n_pairs", pa.int64()),
        ]
    )


def summary_schema() -> pa.Schema:
    return pa.schema(
        [
            ("model", pa.string()),
            ("benchmark", pa.string()),
            ("accuracy", pa.float64()),
            ("std", pa.float64()),
            ("val", pa.float64()),
            ("val_std", pa.float64()),
            ("far", pa.float64()),
            ("n_pairs", pa.int64()),
        ]
    )


def filter_counts_schema() -> pa.Schema:
    return pa.schema([("reason", pa.string()), ("images", pa.int64())])


def history_schema() -> pa.Schema:
    return pa.schema(
        [
            ("epoch", pa.int64()),
            ("loss", pa.float64()),
            ("lr", pa.float64()),
            ("images", pa.int64()),
            ("seconds", pa.float64()),
            ("images_per_s", pa.float64()),
        ]
    )


def identity_stats_schema() -> pa.Schema:
    return pa.schema(
        [
            ("identity", pa.int64()),
            ("images", pa.int64()),
            ("detected", pa.int64()),
            ("detection_rate", pa.float64()),
            ("intra_cos_mean", pa.float64()),
            ("reference_cos_mean", pa.float64()),
            ("nearest_other_cos_mean", pa.float64()),
        ]
    )


def similarity_schema() -> pa.Schema:
    return pa.schema(
        [
            ("kind", pa.string()),
            ("bin_left", pa.float64()),
            ("bin_right", pa.float64()),
            ("count", pa.int64()),
        ]
    )


def image_stats_schema() -> pa.Schema:
    return pa.schema(
        [
            ("identity", pa.int64()),
            ("sample", pa.int64()),
            ("status", pa.string()),
            ("face_prob", pa.float32()),
            ("reference_cos", pa.float32()),
            ("nearest_other_cos", pa.float32()),
            ("yaw", pa.float64()),
            ("pitch", pa.float64()),
            ("roll", pa.float64()),
        ]
    )


def judge_images_schema() -> pa.Schema:
    """The judge's detector score per judged dataset image (0: no face)."""
    return pa.schema(
        [
            ("identity", pa.int64()),
            ("sample", pa.int64()),
            ("container", pa.string()),
            ("row", pa.int64()),
            ("face_score", pa.float32()),
        ]
    )


def judge_identities_schema() -> pa.Schema:
    return pa.schema(
        [
            ("identity", pa.int64()),
            ("images", pa.int64()),
            ("detected", pa.int64()),
            ("judged", pa.int64()),
            ("consistency", pa.float64()),
            ("genuine_match", pa.float64()),
            ("genuine_pairs", pa.int64()),
            ("nearest_identity", pa.int64()),
            ("nearest_cos", pa.float64()),
            ("impostor_match", pa.float64()),
        ]
    )


def judge_gallery_schema() -> pa.Schema:
    """Gallery faces: MTCNN's probability (from the gallery stage) and the judge's detector
    score."""
    return pa.schema(
        [
            ("index", pa.int64()),
            ("face_prob", pa.float32()),
            ("container", pa.string()),
            ("row", pa.int64()),
            ("face_score", pa.float32()),
        ]
    )


def judge_spread_schema() -> pa.Schema:
    """One face per person of each set (random draws, packing's starts, realised identities):
    the judge's nearest-neighbour distances and the share of pairs it calls the same person."""
    return pa.schema(
        [
            ("set", pa.string()),
            ("description", pa.string()),
            ("faces", pa.int64()),
            ("min_nearest", pa.float64()),
            ("mean_nearest", pa.float64()),
            ("pairs_accepted", pa.float64()),
        ]
    )


def leakage_schema() -> pa.Schema:
    return pa.schema(
        [
            ("rank", pa.int64()),
            ("identity", pa.int64()),
            ("sample", pa.int64()),
            ("real_face", pa.string()),
            ("cosine", pa.float32()),
            ("picture", pa.string()),
        ]
    )


def _to_arrow(column: Any, typ: pa.DataType) -> pa.Array:
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return column.cast(typ)
    if isinstance(typ, pa.FixedSizeListType):
        values = np.ascontiguousarray(np.asarray(column, dtype=np.float32))
        if values.ndim != 2 or values.shape[1] != typ.list_size:
            raise ValueError(f"expected an (n, {typ.list_size}) array, got shape {values.shape}")
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), typ.list_size)
    return pa.array(column, type=typ)


def _metadata(meta: Mapping[str, Any] | None) -> dict[str, str]:
    metadata = {f"{META_PREFIX}version": __version__}
    for key, value in (meta or {}).items():
        metadata[f"{META_PREFIX}{key}"] = json.dumps(value, sort_keys=True, default=str)
    return metadata


def _table(columns: Mapping[str, Any], schema: pa.Schema, path: str | Path) -> pa.Table:
    missing = [f.name for f in schema if f.name not in columns]
    extra = [name for name in columns if name not in schema.names]
    if missing or extra:
        raise ValueError(
            f"{path}: columns do not match the schema (missing {missing}, extra {extra})"
        )
    return pa.Table.from_arrays([_to_arrow(columns[f.name], f.type) for f in schema], schema=schema)


def _leaf_paths(schema: pa.Schema | pa.StructType, prefix: str = "") -> list[str]:
    """Parquet's column paths (``image.bytes``, ``embedding.list.element``) of an Arrow schema."""
    paths = []
    for field in schema:
        name = f"{prefix}{field.name}"
        if pa.types.is_struct(field.type):
            paths += _leaf_paths(field.type, f"{name}.")
        elif pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type):
            paths.append(f"{name}.list.element")
        else:
            paths.append(name)
    return paths


class ManifestWriter:
    """A manifest written part by part (a shard's images need not fit in memory), under a
    temporary name that becomes ``path`` only when every part is written.

    Manifests with an image column get row groups of :data:`containers.ROW_GROUP_ROWS` rows and
    Hugging Face's feature metadata (see :mod:`hyperface.storage.containers`).
    """

    def __init__(self, path: str | Path, schema: pa.Schema, meta: Mapping[str, Any] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        self.images = containers.has_images(schema)
        metadata = {**_metadata(meta), **containers.hf_metadata(schema)}
        self.schema = schema.with_metadata(metadata)
        # encoded images neither compress nor make useful dictionaries or statistics: skipping
        # them writes faster (python -m hyperface.bench.containers; README)
        leaves = [p for p in _leaf_paths(schema) if p != f"{containers.IMAGE_COLUMN}.bytes"]
        self.writer = pq.ParquetWriter(
            self.tmp,
            self.schema,
            compression={p: "snappy" for p in leaves},
            use_dictionary=leaves,
            write_statistics=leaves,
        )

    def write(self, part: Mapping[str, Any] | pa.Table) -> None:
        table = part if isinstance(part, pa.Table) else _table(part, self.schema, self.path)
        if not table.schema.equals(self.schema, check_metadata=False):
            table = table.cast(self.schema)
        table = table.replace_schema_metadata(self.schema.metadata)
        self.writer.write_table(
            table, row_group_size=containers.ROW_GROUP_ROWS if self.images else None
        )

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.writer.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_manifest(
    path: str | Path,
    columns: Mapping[str, Any],
    schema: pa.Schema,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write ``columns`` (name -> list/array) as Parquet with ``schema`` and provenance metadata."""
    table = _table(columns, schema, path)
    with ManifestWriter(path, schema, meta) as writer:
        writer.write(table)


def write_frame(
    path: str | Path, frame: pd.DataFrame, schema: pa.Schema, meta: Mapping[str, Any] | None = None
) -> None:
    """:func:`write_manifest` for a DataFrame whose columns are exactly the schema's."""
    write_manifest(path, {name: frame[name].to_numpy() for name in frame.columns}, schema, meta)


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """A manifest (or some of its columns) as an Arrow table; an unreadable file is an error
    that names it."""
    with reading(path):
        return pq.read_table(path, columns=columns)


def read_manifest(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a manifest (or some of its columns) as a DataFrame; fixed-size list columns become
    object columns of arrays."""
    return read_table(path, columns).to_pandas()


def read_embeddings(path: str | Path, column: str = "embedding") -> np.ndarray:
    """The embedding column of a manifest as one (n, D) float32 array, without a Python loop."""
    col = read_table(path, [column]).column(column).combine_chunks()
    dim = col.type.list_size
    return np.array(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)


def read_meta(path: str | Path) -> dict[str, Any]:
    with reading(path):
        raw = pq.read_schema(path).metadata or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key_s = key.decode()
        if key_s.startswith(META_PREFIX):
            name = key_s[len(META_PREFIX) :]
            text = value.decode()
            out[name] = text if name == "version" else json.loads(text)
    return out
