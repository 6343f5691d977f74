"""Input validation shared by the cells and networks; every message names the argument."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DTypeError, ShapeError, ValueRangeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_dtype(dtype: object, name: str = "dtype") -> np.dtype:
    """The parameter dtype: float32 or float64, nothing else."""
    try:
        dt = np.dtype(dtype)  # type: ignore[arg-type]
    except TypeError as exc:
        raise DTypeError(f"{name}: expected float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise DTypeError(f"{name}: expected float32 or float64, got {dt}")
    return dt


def array(x: object, name: str, dtype: np.dtype, ndim: int | tuple[int, ...],
          finite: bool = True) -> np.ndarray:
    """Check that `x` is a floating array of `dtype` with one of the ranks in `ndim`."""
    if not isinstance(x, np.ndarray):
        raise DTypeError(f"{name}: expected a numpy.ndarray of {dtype}, got {type(x).__name__}")
    if x.dtype != dtype:
        hint = f" (convert with {name}.astype(np.{dtype}))" if x.dtype.kind == "f" else ""
        raise DTypeError(f"{name}: expected dtype {dtype} (the parameters' dtype), got {x.dtype}{hint}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise ShapeError(f"{name}: expected a {want} array, got shape {x.shape}")
    if finite and not np.isfinite(x).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise ValueRangeError(f"{name}: contains {x[where]} at index {where}".replace("nan", "NaN"))
    return x


def shape(x: np.ndarray, name: str, expected: tuple[int, ...], what: str = "") -> None:
    """Check an exact shape; `what` explains the expected shape in words."""
    if x.shape != expected:
        words = f" ({what})" if what else ""
        raise ShapeError(f"{name}: expected shape {expected}{words}, got {x.shape}")


def positive_int(v: object, name: str, allow_zero: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ConfigError(f"{name}: expected an int, got {type(v).__name__} {v!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(f"{name}: expected an int {'>= 0' if allow_zero else '> 0'}, got {v}")
    return int(v)


def number(v: object, name: str, minimum: float, open_min: bool = False,
           maximum: float | None = None, open_max: bool = False) -> float:
    """A finite real number from `minimum` (excluded with `open_min`) to `maximum`."""
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v)
    ok = ok and (v > minimum if open_min else v >= minimum)
    if ok and maximum is not None:
        ok = v < maximum if open_max else v <= maximum
    if not ok:
        low = f"{'>' if open_min else '>='} {minimum:g}"
        high = "" if maximum is None else f" and {'<' if open_max else '<='} {maximum:g}"
        raise ConfigError(f"{name}: expected a finite number {low}{high}, got {v!r}")
    return float(v)


def probability(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise ConfigError(f"{name}: expected a float in [0, 1), got {type(v).__name__} {v!r}")
    if not 0.0 <= float(v) < 1.0:
        raise ConfigError(f"{name}: expected a float in [0, 1), got {v}")
    return float(v)


def choice(v: object, name: str, options: tuple[str, ...]) -> str:
    if v not in options:
        raise ConfigError(f"{name}: expected one of {', '.join(map(repr, options))}, got {v!r}")
    return v  # type: ignore[return-value]


def lengths(x: object, name: str, B: int, T: int) -> np.ndarray | None:
    """Sequence lengths: 1-D integers in [0, T], one per batch row; None means all T.

    A length of 0 is allowed (as ONNX `sequence_lens`): that row outputs zeros and its final
    state is its initial state."""
    if x is None:
        return None
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ShapeError(f"{name}: expected shape ({B},) (one length per batch row), got {arr.shape}")
    if B and (arr.min() < 0 or arr.max() > T):
        raise ValueRangeError(f"{name}: expected every length in [0, {T}] (T = {T}), "
                              f"got min {arr.min()} and max {arr.max()}")
    return arr.astype(np.intp)
