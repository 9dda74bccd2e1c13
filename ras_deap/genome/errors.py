"""The one exception type of the genome layer."""

__all__ = ["GenomeError"]


class GenomeError(ValueError):
    """An invalid genome: a cycle, a dangling reference, an unreachable node or
    a parameter outside its choices. The message names the offending part."""
