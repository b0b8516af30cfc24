"""Built-in Stage-1 generators, registered through the ``hiergen_generators`` hook."""

from __future__ import annotations

from hiergen.generators.markov import MarkovGenerator
from hiergen.plugins.markers import hookimpl
from hiergen.plugins.records import GeneratorSpec


@hookimpl
def hiergen_generators() -> list[GeneratorSpec]:
    return [
        GeneratorSpec(
            "markov",
            MarkovGenerator,
            "Smoothed Markov chain of categories conditioned on sex x age band (numpy, no torch)",
        )
    ]
