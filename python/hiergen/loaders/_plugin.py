"""Built-in loaders, registered through the ``hiergen_loaders`` hook."""

from __future__ import annotations

from hiergen.loaders import LOADERS
from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import LoaderSpec


@hookimpl
def hiergen_loaders() -> list[LoaderSpec]:
    return [
        LoaderSpec(name=name, load=fn, description=desc)
        for name, (fn, desc) in LOADERS.items()
    ]
