"""The one exception type of the adversarial bank."""

__all__ = ["BankError"]


class BankError(ValueError):
    """A bank that is malformed, corrupted (checksum mismatch) or built for
    another dataset / image shape. The message names the problem and the fix."""
