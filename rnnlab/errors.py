"""Errors raised by rnnlab: every one names the argument, what was expected and what came."""


class RnnlabError(Exception):
    """Base class of every error rnnlab raises on purpose."""


class ShapeError(RnnlabError, ValueError):
    """An array has the wrong rank or size."""


class DTypeError(RnnlabError, TypeError):
    """An array has the wrong dtype, or an argument the wrong type."""


class ValueRangeError(RnnlabError, ValueError):
    """A value is out of range: NaN/inf input, lengths beyond T, a negative size."""


class ConfigError(RnnlabError, ValueError):
    """An unknown option or an option that does not fit the others."""


class OrderError(RnnlabError, RuntimeError):
    """A call out of order: backward before forward, gradients before backward, a forward
    call's saved activations used twice."""
