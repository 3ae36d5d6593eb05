"""Atomic writes and safe loads: nothing half-written, nothing unpickled.

Every writer goes through `atomic_path`: the file is written at a temporary sibling name and renamed onto its path
when the write succeeded. Inside `publication(outputs)` (a stage's run) a write to one of `outputs` stays at its
temporary name until the whole block succeeds, and then every output is renamed in one pass: a stage that fails
leaves its previous outputs, or none, never some new and some old. An `OSError` (no space, permission, read-only
file system) becomes a one-line `OSRError` naming the path.

A stage's diagnostics are stored as rows {name, value} (`diagnostic_rows`, the form DVC plots); the study reads
them back as a nested report (`diagnostics_tree`, `merged`).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from osr import OSRError


def write_error(path: str | os.PathLike, e: OSError) -> OSRError:
    """A one-line error for a failed write of `path`: the operating system's reason, never a traceback."""
    return OSRError(f"{path}: cannot write ({e.strerror or type(e).__name__})")


class Publication:
    """The outputs of one stage: the temporary files written for them, renamed onto them together by `commit`."""

    def __init__(self, outputs: Iterable[str | os.PathLike]):
        self.outputs = [Path(os.path.abspath(p)) for p in outputs]
        self.pending: dict[Path, Path] = {}  # final path -> its temporary file or folder
        self.created: list[Path] = []  # output folders made for the pending files, removed again by `discard`

    def covers(self, path: Path) -> bool:
        full = Path(os.path.abspath(path))
        return any(full == out or out in full.parents for out in self.outputs)

    def check_writable(self) -> None:
        """Every output's folder is (or can be made) a writable folder: refused before the stage does any work."""
        for out in self.outputs:
            folder = out.parent
            while not folder.exists():
                folder = folder.parent
            if not folder.is_dir():
                raise OSRError(f"{os.path.relpath(folder)}: not a folder, so {os.path.relpath(out)} cannot be written")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise OSRError(f"{os.path.relpath(folder)}: output folder is not writable")

    def commit(self) -> None:
        for path, tmp in self.pending.items():
            try:
                _replace(tmp, path)
            except OSError as e:
                self.discard()
                raise write_error(path, e) from None
        self.pending.clear()

    def discard(self) -> None:
        for tmp in self.pending.values():
            _remove(tmp)
        self.pending.clear()
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty


_PUBLICATION: contextvars.ContextVar[Publication | None] = contextvars.ContextVar("osr_publication", default=None)


@contextlib.contextmanager
def publication(outputs: Iterable[str | os.PathLike]) -> Iterator[Publication]:
    """Run a block whose writes to `outputs` (files or folders) are published together when it succeeds and
    discarded when it fails; every output's folder is checked to be writable first."""
    pub = Publication(outputs)
    pub.check_writable()
    token = _PUBLICATION.set(pub)
    try:
        yield pub
    except BaseException:
        pub.discard()
        raise
    finally:
        _PUBLICATION.reset(token)
    pub.commit()


def _make_parent(path: Path) -> None:
    missing = [p for p in reversed(path.parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSRError(f"{path.parent}: cannot create output folder ({e.strerror})") from None
    pub = _PUBLICATION.get()
    if pub is not None and pub.covers(path):
        pub.created += [p for p in missing if p not in pub.created]


def _replace(tmp: Path, path: Path) -> None:
    """Rename `tmp` onto `path`; a folder replaces a folder (the old one is moved aside first, then removed)."""
    if tmp.is_dir() and path.is_dir():
        old = path.parent / f".{path.name}.old{os.getpid()}"
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists():
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds (inside a
    `publication` covering `path`: when the publication succeeds)."""
    path = Path(path)
    _make_parent(path)
    if not os.access(path.parent, os.W_OK):
        raise OSRError(f"{path.parent}: output folder is not writable")
    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    pub = _PUBLICATION.get()
    try:
        _remove(tmp)  # a stale one of an earlier write of the same path
        yield tmp
        if pub is not None and pub.covers(path):
            pub.pending[path] = tmp
            tmp = None
        else:
            _replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp is not None:
            _remove(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces `path` (a folder) when the block succeeds."""
    with atomic_path(path) as tmp:
        tmp.mkdir()
        yield tmp


def existing_file(path: str | os.PathLike) -> Path:
    """`path` as a Path, or a one-line OSRError if no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise OSRError(f"{path}: file not found")
    return path


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OSRError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise OSRError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an .npz eagerly, refusing pickles and truncated or corrupt archives."""
    path = existing_file(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise OSRError(f"{path}: contains pickled objects, refusing to load (allow_pickle=False)") from None
        raise OSRError(f"{path}: corrupt or truncated archive ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise OSRError(f"{path}: corrupt or truncated archive ({type(e).__name__}: {e})") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise OSRError(f"{path}: missing arrays {missing}")
    return out


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_torch(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    path = existing_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt / unsafe files
        raise OSRError(f"{path}: cannot load checkpoint safely ({_load_reason(e)})") from None


def _load_reason(e: Exception) -> str:
    """The first sentence of torch's error, without its advice to unpickle arbitrary objects."""
    text = str(e).strip()
    if "Weights only load failed" in text:
        return "it holds objects other than tensors and plain containers; refusing to unpickle them"
    return text.splitlines()[0].split(". ")[0] if text else type(e).__name__


# ------------------------------------------------------------------ diagnostics: a nested report as rows

def diagnostic_rows(tree: dict, prefix: str = "") -> list[dict]:
    """A nested report as rows {name: dotted path, value: leaf}, the form DVC draws as a bar chart per revision
    (`template: bar_horizontal`, x: value, y: name). A leaf is a value that is neither a dict nor a list of dicts;
    a list of dicts counts as a dict keyed by position."""
    rows = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            value = {str(i): v for i, v in enumerate(value)}
        rows += diagnostic_rows(value, f"{name}.") if isinstance(value, dict) and value else [
            {"name": name, "value": value}]
    return rows


def diagnostics_tree(rows: list[dict]) -> dict:
    """The nested report that `diagnostic_rows` flattened (a list of dicts comes back keyed by position)."""
    tree: dict = {}
    for row in rows:
        *parents, leaf = row["name"].split(".")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = row["value"]
    return tree


def merged(metrics: dict, diagnostics: dict) -> dict:
    """One report from a stage's metrics and its diagnostics (disjoint leaves): `merged(quality,
    diagnostics_tree(rows))`, the whole record the study archives of an experiment."""
    out = dict(metrics)
    for key, value in diagnostics.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
