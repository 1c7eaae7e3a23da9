"""Read and write the embedding's saved state without pickle.

Arrays go to ``.npy`` files written and read with ``allow_pickle=False``;
strings and settings go to JSON. This module checks files, shapes and dtypes
and nothing about what the values mean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from darkvec_stream.errors import StateError


def write_json(path: Path, value: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False, separators=(",", ":"))


def read_json(path: Path, expected_type: type) -> Any:
    try:
        with path.open("r", encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError as error:
        raise StateError(f"{path}: missing state file; the directory is not a complete saved state") from error
    except (OSError, ValueError) as error:
        raise StateError(f"{path}: unreadable JSON state file ({error})") from error
    if not isinstance(value, expected_type):
        raise StateError(f"{path}: expected a JSON {expected_type.__name__}, found {type(value).__name__}")
    return value


def write_array(path: Path, array: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def read_array(path: Path, dtype: np.dtype[Any] | type, shape: tuple[int | None, ...]) -> np.ndarray:
    """Load a ``.npy`` file and check its dtype and shape (``None`` matches any size)."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError as error:
        raise StateError(f"{path}: missing state file; the directory is not a complete saved state") from error
    except (OSError, ValueError) as error:
        raise StateError(f"{path}: unreadable array file ({error})") from error
    if array.dtype != np.dtype(dtype):
        raise StateError(f"{path}: dtype {array.dtype} found, {np.dtype(dtype)} expected")
    if array.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, array.shape)):
        raise StateError(f"{path}: shape {array.shape} found, {shape} expected (None is any size)")
    return array


def require_keys(path: Path, document: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in document]
    if missing:
        raise StateError(f"{path}: missing fields {missing}; the file is foreign or from another version")
