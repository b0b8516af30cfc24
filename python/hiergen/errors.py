"""Exception types raised by hiergen.

Every error names what was wrong (file, column, argument, value) so that the CLI can print it
as one readable line.
"""

from __future__ import annotations


class HiergenError(Exception):
    """Base class of every error hiergen raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class DataError(HiergenError, ValueError):
    """Input data that cannot be read or violates the expected layout."""


class PluginError(HiergenError, LookupError):
    """Unknown, duplicate or broken plugin."""


class ModelError(HiergenError, ValueError):
    """A model directory or checkpoint that cannot be loaded."""
