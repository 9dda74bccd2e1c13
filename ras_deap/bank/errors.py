"""The one exception type of the adversarial bank."""

from ..errors import UsageError

__all__ = ["BankError"]


class BankError(UsageError, ValueError):
    """A bank that is malformed, corrupted (checksum mismatch) or built for
    another dataset / image shape. The message names the problem and the fix."""
