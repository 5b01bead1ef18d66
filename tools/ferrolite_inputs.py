"""Deterministic model inputs shared by the Python tools and the Rust tests.

The Rust side implements the same generator, so golden files never need to
store inputs: both sides regenerate them from (seed, input index).

Generator: splitmix64, one draw per element in row-major order. For input
number k (subgraph-0 input order) the initial state is
seed * 0x100000001B3 + k (mod 2^64). Each draw advances the state by the
golden-ratio increment and then mixes it. Because the state after n draws is
just initial + n * increment, all draws can be computed at once with wrapping
uint64 array arithmetic.

Mapping of a draw z (uint64) to an element:
  float32  f32(2 * ((z >> 40) / 2^24) - 1)   uniform in [-1, 1), exact in f32
  float16  the float32 value above, rounded to nearest-even float16
  uint8    z >> 56
  int8     (z >> 56) - 128
  int16    (z >> 48) - 32768
  int32    z >> 61              (0..7, usable as an index)
  int64    z >> 61
  bool     z >> 63

Run this file directly to self-check it against a scalar implementation and
the published splitmix64 test vector.
"""

import sys

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
SEED_STRIDE = 0x100000001B3


def initial_state(seed: int, k: int) -> int:
    """State before the first draw for input number `k`."""
    return (seed * SEED_STRIDE + k) & MASK64


def splitmix64_draws(state: int, count: int) -> np.ndarray:
    """The next `count` splitmix64 outputs starting from `state`, as uint64."""
    # numpy wraps uint64 array arithmetic modulo 2^64 without warnings, which
    # is exactly the arithmetic the generator is defined in. Python ints are
    # masked before they enter numpy so no conversion can overflow.
    steps = np.arange(1, count + 1, dtype=np.uint64)
    z = np.uint64(state & MASK64) + steps * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def _to_dtype(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float16):
        # 24 random bits: u * 2 - 1 stays exact in f32 (the result has at most
        # 24 significant bits), so the Rust side can compute it identically.
        u = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
        v = np.float32(2.0) * u - np.float32(1.0)
        return v.astype(dtype)
    if dtype == np.uint8:
        return (z >> np.uint64(56)).astype(np.uint8)
    if dtype == np.int8:
        return ((z >> np.uint64(56)).astype(np.int16) - 128).astype(np.int8)
    if dtype == np.int16:
        return ((z >> np.uint64(48)).astype(np.int32) - 32768).astype(np.int16)
    if dtype in (np.int32, np.int64):
        return (z >> np.uint64(61)).astype(dtype)
    if dtype == np.bool_:
        return (z >> np.uint64(63)).astype(np.bool_)
    raise ValueError(f"no generator rule for dtype {dtype}")


def generate_input(shape, dtype, k: int, seed: int = 0) -> np.ndarray:
    """Input tensor number `k` for `seed`, with the given shape and dtype."""
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    z = splitmix64_draws(initial_state(seed, k), count)
    return _to_dtype(z, dtype).reshape(shape)


def _scalar_splitmix64(state: int):
    """Plain-int reference implementation, used only by the self-check."""
    while True:
        state = (state + GOLDEN) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        yield z ^ (z >> 31)


def self_check() -> None:
    # Published first outputs of splitmix64 seeded with 0.
    known = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    got = [int(v) for v in splitmix64_draws(0, 3)]
    assert got == known, [hex(v) for v in got]

    for seed, k in [(0, 0), (0, 3), (7, 1), (2**64 - 1, 5), (123456789, 0)]:
        gen = _scalar_splitmix64(initial_state(seed, k))
        scalar = [next(gen) for _ in range(1000)]
        vec = [int(v) for v in splitmix64_draws(initial_state(seed, k), 1000)]
        assert scalar == vec, (seed, k)
        for dtype in (np.float32, np.uint8, np.int8, np.int16, np.int32, np.int64, np.bool_):
            arr = generate_input([10, 100], dtype, k, seed).reshape(-1)
            for z, v in zip(scalar, arr):
                if dtype == np.float32:
                    want = 2.0 * ((z >> 40) / 2.0**24) - 1.0  # exact in double
                    assert float(v) == want
                elif dtype == np.uint8:
                    assert int(v) == z >> 56
                elif dtype == np.int8:
                    assert int(v) == (z >> 56) - 128
                elif dtype == np.int16:
                    assert int(v) == (z >> 48) - 32768
                elif dtype == np.bool_:
                    assert bool(v) == bool(z >> 63)
                else:
                    assert int(v) == z >> 61
    f = generate_input([4096], np.float32, 0)
    assert f.min() >= -1.0 and f.max() < 1.0
    print("ferrolite_inputs: self-check passed")


if __name__ == "__main__":
    self_check()
    sys.exit(0)
