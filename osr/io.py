"""Atomic writes and safe loads: nothing half-written, nothing unpickled."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from osr import OSRError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSRError(f"{path.parent}: cannot create output folder ({e.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise OSRError(f"{path.parent}: output folder is not writable")
    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces `path` (a folder) when the block succeeds."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.mkdir()
        yield tmp
        if path.exists():
            shutil.rmtree(path)


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
