"""Loader options given as text (``KEY=VALUE`` on the command line), parsed by the type the
loader's signature declares.

Values: ``true``/``false`` for flags; ``none`` (or empty) where the option may be None;
mappings as ``M:0,F:1`` or a JSON object; lists as ``a,b`` or a JSON list; numbers as numbers.
Unknown options and unparsable values raise ``ValueError`` naming the loader, the option, the
value and what was expected.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
_FIXED = {"path", "directory", "strict"}  # given by the command itself, not as options


def loader_parameters(fn: Callable[..., Any]) -> dict[str, str]:
    """Option name -> declared type (as written in the signature) of a loader function."""
    out: dict[str, str] = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in _FIXED or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        ann = param.annotation
        out[name] = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return out


def _mapping(text: str) -> dict[str, Any]:
    if text.lstrip().startswith("{"):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("a JSON object")
        return value
    out: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, raw = item.partition(":")
        if not sep or not key.strip():
            raise ValueError("KEY:VALUE pairs separated by commas (M:0,F:1) or a JSON object")
        raw = raw.strip()
        try:
            out[key.strip()] = int(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def _convert(text: str, declared: str) -> Any:
    kinds = {part.strip() for part in declared.replace("Optional[", "").rstrip("]").split("|")}
    low = text.strip().lower()
    if "None" in kinds and low in ("none", "null", ""):
        return None
    if "bool" in kinds:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("true or false")
    if any(k.startswith(("dict", "Mapping")) for k in kinds):
        return _mapping(text)
    if any(k.startswith(("Sequence", "list", "tuple")) for k in kinds):
        if text.lstrip().startswith("["):
            value = json.loads(text)
            if not isinstance(value, list):
                raise ValueError("a JSON list")
            return value
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return parts[0] if "str" in kinds and len(parts) == 1 else parts
    for name, cast in (("int", int), ("float", float)):
        if name in kinds:
            try:
                return cast(text)
            except ValueError:
                raise ValueError(f"a number ({name})") from None
    return text


def parse_loader_options(
    fn: Callable[..., Any], pairs: Iterable[str], *, loader: str = "loader"
) -> dict[str, Any]:
    """``["sex_values=M:0,F:1", "visit=none"]`` -> keyword arguments for ``fn``, typed."""
    params = loader_parameters(fn)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"option {pair!r}: expected KEY=VALUE")
        if key not in params:
            known = ", ".join(f"{k} ({v})" for k, v in params.items()) or "none"
            raise ValueError(f"{loader} loader has no option {key!r}; its options: {known}")
        try:
            out[key] = _convert(text, params[key])
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"{loader} loader option {key}={text!r}: expected {exc} ({params[key]})"
                if not isinstance(exc, json.JSONDecodeError)
                else f"{loader} loader option {key}={text!r}: invalid JSON ({exc})"
            ) from None
    return out
