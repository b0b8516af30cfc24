"""The pluggy markers of the ``hiergen`` project (entry-point group ``hiergen``)."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "hiergen"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
