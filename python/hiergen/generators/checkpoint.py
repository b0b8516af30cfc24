"""Model checkpoints as a directory holding ``model.safetensors`` and ``config.json``.

Any generator (built in or from a plugin) can store its arrays and its JSON configuration
with :func:`save_checkpoint` and read them back with :func:`load_checkpoint`. No pickle is
involved. The JSON file records a format version, the hiergen version that wrote it, the
generator kind and a SHA-256 digest of the tensor file, so that a truncated or altered file,
a checkpoint of another generator or of another format version is refused with a
:class:`hiergen.errors.ModelError` that names the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hiergen.errors import ModelError

#: Version of the directory layout written by :func:`save_checkpoint`.
FORMAT_VERSION = 1
FORMAT_NAME = "hiergen-checkpoint"
TENSORS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        kind: the generator name given at save time (``"markov"``).
        config: the JSON-compatible configuration given at save time.
        arrays: the arrays, by name.
        hiergen_version: version of hiergen that wrote the checkpoint.
    """

    kind: str
    config: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]]
    hiergen_version: str


def _hiergen_version() -> str:
    from hiergen import __version__

    return __version__


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_json_safe(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"config: {where} is {value!r}; JSON has no NaN or infinity")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"config: key {key!r} under {where} must be a string")
            _check_json_safe(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json_safe(item, f"{where}[{i}]")


def save_checkpoint(
    directory: str | Path,
    kind: str,
    config: Mapping[str, Any],
    arrays: Mapping[str, npt.ArrayLike],
) -> Path:
    """Write ``arrays`` (safetensors) and ``config`` (JSON) of generator ``kind`` to ``directory``.

    The directory is created when missing; existing checkpoint files in it are replaced.
    Returns the directory.
    """
    from safetensors.numpy import save_file

    if not kind:
        raise ValueError("kind: a generator name is required")
    _check_json_safe(dict(config), "config")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.ascontiguousarray(np.asarray(a)) for name, a in arrays.items()}
    for name, a in tensors.items():
        if a.dtype == object or a.dtype.kind in "USV":
            raise TypeError(f"arrays: {name!r} has dtype {a.dtype}; store strings in config")
    tensor_path = out / TENSORS_FILE
    save_file(tensors, str(tensor_path), metadata={"format": FORMAT_NAME, "kind": kind})
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hiergen_version": _hiergen_version(),
        "kind": kind,
        "tensors_sha256": _sha256(tensor_path),
        "config": dict(config),
    }
    tmp = out / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(header, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(out / CONFIG_FILE)
    return out


def read_header(directory: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint, after its format checks."""
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise ModelError(f"{directory}: checkpoint directory does not exist")
    if not path.is_file():
        raise ModelError(f"{path}: missing; not a hiergen checkpoint directory")
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable or corrupt JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelError(f"{path}: not a {FORMAT_NAME} file (field 'format')")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path}: format_version {version!r} is not supported by this hiergen "
            f"(it reads version {FORMAT_VERSION}; written by hiergen "
            f"{header.get('hiergen_version', '?')})",
            hint="retrain the model or load it with the hiergen version that saved it",
        )
    for key, typ in (("kind", str), ("config", dict), ("tensors_sha256", str)):
        if not isinstance(header.get(key), typ):
            raise ModelError(f"{path}: field {key!r} missing or of the wrong type")
    return header


def load_checkpoint(
    directory: str | Path,
    *,
    kind: str | None = None,
    required: tuple[str, ...] = (),
) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        directory: the checkpoint directory.
        kind: when given, the generator name the checkpoint must have been saved with.
        required: array names that must be present.

    Raises:
        ModelError: missing or corrupt files, another format version, another kind, or a
            missing array.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    header = read_header(directory)
    if kind is not None and header["kind"] != kind:
        raise ModelError(
            f"{Path(directory) / CONFIG_FILE}: a {header['kind']!r} checkpoint, not {kind!r}"
        )
    tensor_path = Path(directory) / TENSORS_FILE
    if not tensor_path.is_file():
        raise ModelError(f"{tensor_path}: missing")
    if _sha256(tensor_path) != header["tensors_sha256"]:
        raise ModelError(
            f"{tensor_path}: corrupt (its SHA-256 differs from the one in {CONFIG_FILE})"
        )
    try:
        arrays = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as exc:  # pragma: no cover - digest first
        raise ModelError(f"{tensor_path}: unreadable safetensors file ({exc})") from exc
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ModelError(f"{tensor_path}: arrays missing: {', '.join(missing)}")
    return Checkpoint(
        kind=header["kind"],
        config=header["config"],
        arrays=dict(arrays),
        hiergen_version=str(header.get("hiergen_version", "?")),
    )


__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "TENSORS_FILE",
    "Checkpoint",
    "load_checkpoint",
    "read_header",
    "save_checkpoint",
]
