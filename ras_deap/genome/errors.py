"""The one exception type of the genome layer."""

from ..errors import UsageError

__all__ = ["GenomeError"]


class GenomeError(UsageError, ValueError):
    """An invalid genome: a cycle, a dangling reference, an unreachable node or
    a parameter outside its choices. The message names the offending part."""
