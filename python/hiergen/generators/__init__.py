"""Stage-1 generators: models of category sequences conditioned on age and sex."""

from hiergen.generators.base import CategoryPatients, Stage1Generator

__all__ = ["CategoryPatients", "Stage1Generator"]
