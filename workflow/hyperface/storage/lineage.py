"""Lineage: a content-derived hash for every output, made from its settings and its inputs' lineage.

Every manifest (and the trained weights) records in its metadata

- ``config_hash``: a hash of the settings that produced it (its rule's params),
- ``inputs``: for each input (a manifest, a weights file, a benchmark), its path and lineage,
- ``lineage``: a hash of the stage name, ``config_hash`` and every input's lineage.

An input that is itself a hyperface output carries its lineage in its metadata; any other file or
folder (model weights, a .bin, a folder of real faces) gets a content fingerprint. Nothing depends
on timestamps or absolute paths, so two fresh runs of one config give the same lineage everywhere,
and a changed setting or input anywhere upstream changes the lineage of everything downstream.
Resumable state (checkpoints, partial shards) is named by the lineage of the job that writes it,
so a job never resumes state written for other inputs or settings.

    # the provenance tree of an output
    python -m hyperface.storage.lineage results/eval/summary.parquet
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BLOCK = 1 << 22  # read 4 MiB at a time
META_KEY = "hyperface.lineage"  # safetensors metadata: the lineage, and the whole record as JSON
RECORD_KEY = "hyperface.record"


def digest(value: Any) -> str:
    """A stable 16-hex-digit hash of JSON-serialisable ``value`` (dict keys sorted); a settings
    object hashes as the config section it stands for, so typed and plain settings agree."""
    text = json.dumps(value, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    as_section = getattr(value, "as_section", None)
    return as_section() if callable(as_section) else str(value)


def _file_digest(path: Path) -> str:
    """sha256 of the whole file: exact, and cheap beside the job that loads it (about 3 s for
    Arc2Face's 3.4 GB UNet, read again from the page cache by the loader).

    A safetensors header is hashed in canonical form: the library writes its metadata in a
    per-process hash order, so two writes of the same tensors differ in their header bytes.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if path.suffix == ".safetensors":
            size = int.from_bytes(f.read(8), "little")
            try:
                header = json.loads(f.read(size)) if size < path.stat().st_size else None
            except ValueError:  # not a readable header: hash the bytes as they are
                header = None
            if header is None:
                f.seek(0)
            else:
                h.update(json.dumps(header, sort_keys=True).encode())
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()[:16]


def fingerprint(path: str | Path, cache: DigestCache | None = None) -> str:
    """Content fingerprint of a file or a folder (relative names and file contents; hidden
    entries such as download caches are skipped). With ``cache``, a file whose size and
    modification time are unchanged is not read again."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (an input of this job)")
    file_digest = _file_digest if cache is None else cache.digest
    if path.is_file():
        return file_digest(path)
    return digest([[name, file_digest(path / name)] for name in _visible_files(path)])


def _visible_files(folder: Path) -> list[str]:
    """The files below ``folder`` (relative names, in path order), hidden ones and those in
    hidden folders left out; os.walk, not pathlib: a folder of 70k faces is walked on every
    plan."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(top, folder)
        for name in files:
            if not name.startswith(".") and os.path.isfile(os.path.join(top, name)):
                found.append(name if rel == "." else f"{rel}/{name}")
    return sorted(found, key=lambda name: name.split("/"))


class DigestCache:
    """File digests kept in a JSON file by absolute path, size and modification time, as build
    tools do: checking a 3.4 GB UNet on every parse of the Snakefile costs a ``stat``, not a
    read. A file rewritten with other content gets a new size or time, hence a new digest."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.entries: dict[str, list] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def digest(self, file: Path) -> str:
        stat = file.stat()
        key, now = os.path.abspath(file), [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(key)
        if entry is None or entry[:2] != now:
            self.entries[key] = [*now, _file_digest(file)]
            self.changed = True
        return self.entries[key][2]

    def save(self) -> None:
        """Write the cache back if it learned anything (atomically: jobs parse concurrently)."""
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries, sort_keys=True))
            tmp.replace(self.path)
            self.changed = False


def safetensors_metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """The lineage record of :func:`lineage_meta` as safetensors metadata (strings only)."""
    return {META_KEY: meta["lineage"], RECORD_KEY: json.dumps(meta, sort_keys=True)}


def recorded_meta(path: str | Path) -> dict[str, Any]:
    """What a hyperface output (Parquet or safetensors) records about itself; {} for other files."""
    path = Path(path)
    if path.suffix == ".parquet":
        from hyperface.storage import manifests

        return manifests.read_meta(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            record = (f.metadata() or {}).get(RECORD_KEY)
        return json.loads(record) if record else {}
    return {}


def recorded_lineage(path: str | Path) -> str | None:
    """The lineage a hyperface output records about itself, else None."""
    return recorded_meta(path).get("lineage")


def input_lineage(path: str | Path) -> str:
    """An input's lineage: the one it records, or its content fingerprint."""
    return recorded_lineage(path) or fingerprint(path)


Inputs = Mapping[str, "str | Path | Mapping[str, str] | Iterable[str | Path]"]


def describe_inputs(inputs: Inputs) -> dict[str, Any]:
    """``{name: {"path", "lineage"}}`` (a list of those for a list of paths) for the metadata.

    A value may also be such a ``{"path", "lineage"}`` dict already, for an input whose lineage
    the stage computes itself (e.g. only the images a gallery shard reads from a folder).
    """
    out: dict[str, Any] = {}
    for name, value in inputs.items():
        if isinstance(value, Mapping):
            out[name] = {"path": str(value["path"]), "lineage": str(value["lineage"])}
        elif isinstance(value, (str, Path)):
            out[name] = {"path": str(value), "lineage": input_lineage(value)}
        else:
            out[name] = [{"path": str(p), "lineage": input_lineage(p)} for p in value]
    return out


def lineage_meta(stage: str, settings: Any, inputs: Inputs | None = None) -> dict[str, Any]:
    """The metadata every output of ``stage`` carries: config_hash, inputs, lineage."""
    config_hash = digest(settings)
    described = describe_inputs(inputs or {})
    strip = {
        k: ([e["lineage"] for e in v] if isinstance(v, list) else v["lineage"])
        for k, v in described.items()
    }
    return {
        "stage": stage,
        "config_hash": config_hash,
        "inputs": described,
        "lineage": digest([stage, config_hash, strip]),
    }


def state_name(prefix: str, meta: Mapping[str, Any], device: str | None = None) -> str:
    """File or folder name of resumable state for the job of ``meta`` (on ``device``, whose
    arithmetic a resumed run must share to end where an uninterrupted one would)."""
    key = (
        meta["lineage"] if device is None else digest([meta["lineage"], str(device).split(":")[0]])
    )
    return f"{prefix}-{key}"


def provenance(
    path: str | Path,
    depth: int = 0,
    seen: set[str] | None = None,
    name: str = "",
    workdir: str | Path = ".",
) -> list[str]:
    """Lines of the provenance tree of ``path``, following the input paths each output records
    (relative to the workflow's working directory ``workdir``, as Snakemake gave them)."""
    seen = set() if seen is None else seen
    pad, label = "  " * depth, f"{name}: " if name else ""
    found = Path(workdir) / path
    meta = recorded_meta(found) if found.exists() else {}
    if "lineage" not in meta:  # weights, benchmarks, real faces: what they are is their content
        shown = f"fingerprint {fingerprint(found)}" if found.exists() else "missing"
        return [f"{pad}{label}{path} ({shown})"]
    line = f"{pad}{label}{path}  [{meta.get('stage', '?')}] lineage {meta['lineage']}"
    if meta["lineage"] in seen:
        return [line + " (as above)"]
    seen.add(meta["lineage"])
    lines = [line + f", settings {meta.get('config_hash')}"]
    for key, value in (meta.get("inputs") or {}).items():
        entries = value if isinstance(value, list) else [value]
        for entry in entries[:3]:
            lines += provenance(entry["path"], depth + 1, seen, key, workdir)
        if len(entries) > 3:
            lines.append(f"{pad}  ... and {len(entries) - 3} more {key} inputs")
    return lines


if __name__ == "__main__":  # run in the workflow's working directory
    for arg in sys.argv[1:] or ["results/eval/summary.parquet"]:
        print("\n".join(provenance(arg)))
