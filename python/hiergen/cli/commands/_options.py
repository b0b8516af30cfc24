"""Small helpers shared by the train and generate commands."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click


def parse_pairs(values: Iterable[str], option: str) -> dict[str, Any]:
    """``["order=1", "name=x"]`` -> ``{"order": 1, "name": "x"}`` (values read as JSON if
    they parse, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def read_config(path: Path | None) -> dict[str, Any]:
    """A JSON or TOML configuration file (empty dict when ``path`` is ``None``)."""
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as exc:
        raise click.BadParameter(
            f"{path}: cannot be parsed ({exc})", param_hint="--config"
        ) from exc
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a table of settings", param_hint="--config")
    return data
