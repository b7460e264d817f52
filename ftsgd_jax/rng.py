"""Counter-based random numbers: a keyed integer hash, cheap to compile and to run.

A key is a ``uint32[2]`` array. ``fold_in(key, i)`` derives independent child keys (per
scenario, per round, per process, per purpose), so any scenario can be rerun alone from
``fold_in(seed_key(seed), scenario)`` and gives exactly its lane of a batched run: every
number depends only on (key, position), never on the batch. A draw of many numbers from
one key is ``bits(key, shape)``: the number at flat position c hashes ``(key, c)``;
``bits_rows``/``bits_columns`` lay several keys' streams side by side, and the
``*_of_bits`` transforms turn bits into uniforms, exponentials, Pareto and normals.

The generator hashes ``(key, counter)`` with three rounds of the murmur3 32-bit finaliser,
injecting the two key words between rounds. It is a statistical generator for
simulation, not a cryptographic one: for a fixed key the map counter -> bits is a
bijection (no repeats within a stream of 2**32 numbers), and tests check moments,
uniformity (Kolmogorov-Smirnov), the normal law and correlations between neighbouring counters and
sibling keys. Uniform floats carry 24 random bits. Compared with JAX's threefry it
compiles in a fraction of the time and draws several times faster on a CPU (see
``benchmarks/``), which matters because random draws dominate a simulated round.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# The version of what a seed draws: raised whenever a change makes some seed's scenarios
# other draws (2: a random-family round draws from one key per process, exponentials and
# normals by log; 3: normals built from integers, since streams 2 drew +inf once in 2**24
# normals, and a crash window's iterations computed exactly, not in float32). Results
# record it; resuming or replaying results of another version is refused, since the two
# would be different scenarios under one seed.
STREAMS = 3

_GOLDEN = np.uint32(0x9E3779B9)
_M1 = np.uint32(0x85EBCA6B)
_M2 = np.uint32(0xC2B2AE35)


def _fmix32(x: jax.Array) -> jax.Array:
    x = x ^ (x >> 16)
    x = x * _M1
    x = x ^ (x >> 13)
    x = x * _M2
    return x ^ (x >> 16)


def seed_key(seed: int | jax.Array) -> jax.Array:
    """The root key of a seed (any integer in [0, 2**32))."""
    seed = jnp.asarray(seed, jnp.uint32)
    return jnp.stack([_fmix32(seed ^ _M1), _fmix32(seed + _GOLDEN)])


def fold_in(key: jax.Array, data: int | jax.Array) -> jax.Array:
    """A child key for ``data`` (an integer): distinct data give unrelated keys."""
    data = jnp.asarray(data, jnp.uint32)
    first = _fmix32(key[0] ^ _fmix32(data * _GOLDEN + _M2))
    second = _fmix32(key[1] + _fmix32(data ^ _M1) * _GOLDEN)
    return jnp.stack([first, second])


def split(key: jax.Array, num: int) -> list[jax.Array]:
    """``num`` child keys (fold_in with 0..num-1)."""
    return [fold_in(key, i) for i in range(num)]


def fold_in_range(key: jax.Array, num: int) -> jax.Array:
    """(num, 2): row i is ``fold_in(key, i)``, one key per process say."""
    return jax.vmap(lambda i: fold_in(key, i))(jnp.arange(num, dtype=jnp.uint32))


def bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """uint32 random bits of the given shape."""
    size = int(np.prod(shape, dtype=np.int64))
    return _hash(jnp.arange(size, dtype=jnp.uint32), key[0], key[1]).reshape(shape)


def bits_columns(keys: jax.Array, rows: int) -> jax.Array:
    """uint32 (rows, k): column j is ``bits(keys[j], (rows,))``, for ``keys`` (k, 2).

    The same numbers as k calls of :func:`bits`, computed in this layout rather than
    transposed into it: XLA on a CPU vectorises a fused loop along its last axis only.
    """
    return _hash(jnp.arange(rows, dtype=jnp.uint32)[:, None], keys[None, :, 0], keys[None, :, 1])


def bits_rows(keys: jax.Array, count: int) -> jax.Array:
    """uint32 (k, count): row j is ``bits(keys[j], (count,))``, for ``keys`` (k, 2)."""
    return _hash(jnp.arange(count, dtype=jnp.uint32)[None, :], keys[:, 0:1], keys[:, 1:2])


def _hash(counter: jax.Array, first: jax.Array, second: jax.Array) -> jax.Array:
    """The bits at ``counter`` of the key ``(first, second)`` (broadcasting)."""
    x = _fmix32(counter * _GOLDEN + first)
    x = _fmix32(x ^ second)
    return _fmix32(x + (first ^ _M2))


def uniform(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 uniform on [0, 1), 24 random bits."""
    return uniform_of_bits(bits(key, shape))


def uniform_of_bits(raw: jax.Array) -> jax.Array:
    """The uniform of each uint32: its top 24 bits over 2**24."""
    return (raw >> 8).astype(jnp.float32) * np.float32(2.0**-24)


def exponential(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 standard exponential (mean 1)."""
    return exponential_of_bits(bits(key, shape))


def exponential_of_bits(raw: jax.Array) -> jax.Array:
    """The standard exponential of each uint32: ``-log(1 - u)``, u its uniform.

    ``1 - u`` is exact in float32 (u is a multiple of 2**-24 below 1), so ``log`` is as
    accurate here as ``log1p(-u)`` (relative error 1.2e-7 either way, over all 2**24
    inputs) and cheaper on a CPU (measured 1.4-3x).
    """
    return -jnp.log(1.0 - uniform_of_bits(raw))


def pareto(key: jax.Array, index: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 Pareto with shape ``index`` on [1, inf): density index / x**(index + 1)."""
    return pareto_of_bits(bits(key, shape), index)


def pareto_of_bits(raw: jax.Array, index: jax.Array) -> jax.Array:
    """The Pareto of shape ``index`` of each uint32: ``exp(E / index)``, E its exponential."""
    return jnp.exp(exponential_of_bits(raw) / index)


def normal(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """float32 standard normal by inversion: sqrt(2) erfinv(2u - 1).

    u sits at the centres of 2**24 equal bins, so 2u - 1 lies strictly inside (-1, 1)
    (exactly, in float32) and |z| <= 5.4: the tails beyond carry probability 7e-8. On a
    CPU this is about five times faster than Box-Muller, whose cosine dominates.
    See :func:`normal_of_bits`.
    """
    return normal_of_bits(bits(key, shape))


def normal_columns(keys: jax.Array, rows: int) -> jax.Array:
    """float32 (rows, k) standard normals: column j is ``normal(keys[j], (rows,))``."""
    return normal_of_bits(bits_columns(keys, rows))


def normal_of_bits(raw: jax.Array) -> jax.Array:
    """The standard normal of each uint32: sqrt(2) erfinv(c), c the centre of its 24-bit bin
    on (-1, 1), so that bins k and 2**24 - 1 - k give exact negatives.

    c, 1 - c and 1 + c are each one integer scaled by 2**-24: written as float sums with
    constants (``k 2**-23 - 1 + 2**-24``), XLA's simplifier reassociated ``1 + c`` into
    ``k 2**-23`` and the lowest bin drew +inf.
    """
    odd = 2 * (raw >> 8).astype(jnp.int32) - (2**24 - 1)
    scale = np.float32(2.0**-24)
    c = odd.astype(jnp.float32) * scale
    one_minus_c_squared = ((2**24 - odd).astype(jnp.float32) * scale) * ((2**24 + odd).astype(jnp.float32) * scale)
    return _erf_inv(c, one_minus_c_squared) * np.float32(np.sqrt(2.0))


# Giles' single-precision erfinv ("Approximating the erfinv function", GPU Computing Gems,
# 2011): a polynomial in w - 2.5 where w = -log(1 - c^2) < 5, else in sqrt(w) - 3.
_ERF_INV_CENTRAL = (
    2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941,
)
_ERF_INV_TAIL = (
    -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682,
)


def _erf_inv(c: jax.Array, one_minus_c_squared: jax.Array) -> jax.Array:
    """erfinv on (-1, 1) open: the polynomials of XLA's ``erf_inv``, with
    ``w = -log(1 - c^2)`` from the caller's exact ``(1 - c)(1 + c)`` in place of its
    ``-log1p(-c * c)``.

    log is cheaper than log1p on a CPU (measured 1.4-3x), and the product keeps the bits
    that ``c * c`` rounds away near |c| = 1: relative error <= 3e-7 against erfinv in
    float64 over every input the generator makes, against 6e-6 for ``jax.lax.erf_inv``.
    """
    w = -jnp.log(one_minus_c_squared)
    central = w < 5.0
    w = jnp.where(central, w - 2.5, jnp.sqrt(w) - 3.0)
    p = jnp.where(central, np.float32(_ERF_INV_CENTRAL[0]), np.float32(_ERF_INV_TAIL[0]))
    for inner, outer in zip(_ERF_INV_CENTRAL[1:], _ERF_INV_TAIL[1:]):
        p = jnp.where(central, np.float32(inner), np.float32(outer)) + p * w
    return p * c


def rank(key: jax.Array, size: int) -> jax.Array:
    """A uniformly random permutation's ranks: ``rank < k`` picks k of ``size`` at random."""
    return jnp.argsort(jnp.argsort(uniform(key, (size,))))
