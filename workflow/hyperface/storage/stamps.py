"""Content stamps: a small file per model, benchmark or image-folder input that is rewritten when,
and only when, the input's content changes.

Snakemake decides from modification times, and a weights *folder* keeps its time when a file in
it is replaced (a new checkpoint copied over the old one, a re-downloaded file), so nothing
re-ran. The rules take the stamp as their input instead: a changed fingerprint rewrites it, its
newer time re-runs the jobs that used the input, and an unchanged one leaves it alone (a
``touch`` or a copy with the same bytes re-runs nothing). Fingerprints are cached by size and
modification time (:class:`~hyperface.storage.lineage.DigestCache`), so every parse of the
Snakefile costs a ``stat`` per file, not a read of a 3.4 GB UNet.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from hyperface.storage.lineage import DigestCache, digest, fingerprint


def stamp_path(path: str | Path, folder: str | Path) -> Path:
    """Where the stamp of ``path`` lives: the normalised path, quoted into one file name (a
    long one shortened and completed by a hash)."""
    name = quote(os.path.normpath(str(path)), safe="")
    if len(name) > 180:
        name = f"{name[-160:]}-{digest(name)}"
    return Path(folder) / f"{name}.fingerprint"


def stamp(path: str | Path, folder: str | Path, cache: DigestCache, *, built: bool) -> Path:
    """The stamp of an existing ``path``, rewritten if its content changed.

    A new stamp, or one of an input the workflow builds itself (the demo's tiny models, the
    packaged ones), takes the time of the input's newest file: outputs already made from it stay
    up to date, and a rebuild re-runs its users once, in the run that rebuilt it. A stamp of an
    external input whose content changed takes the current time, whatever times the new files
    carry (``cp -p`` and ``rsync -a`` keep old ones).
    """
    target = stamp_path(path, folder)
    value = fingerprint(path, cache)
    old = target.read_text().strip() if target.exists() else None
    if old == value:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(value + "\n")
    if old is None or built:
        newest = _newest_mtime_ns(Path(path))
        os.utime(tmp, ns=(newest, newest))
    tmp.replace(target)
    return target


def _newest_mtime_ns(path: Path) -> int:
    if path.is_file():
        return path.stat().st_mtime_ns
    times = [p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()]
    return max(times, default=path.stat().st_mtime_ns)


def stamp_built(paths: list[str | Path], folder: str | Path) -> None:
    """The stamps of models a rule has just written (the demo's tiny and packaged models)."""
    cache = DigestCache(Path(folder) / "digests.json")
    for path in paths:
        stamp(path, folder, cache, built=True)
    cache.save()
