"""Tests of ftsgd_jax.rng: the counter-based generator's statistics and reproducibility."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ftsgd_jax import rng

N = 200_000


def test_uniform_passes_kolmogorov_smirnov_and_moments():
    u = np.asarray(rng.uniform(rng.seed_key(1), (N,)), np.float64)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / N)


@pytest.mark.parametrize("lag", [1, 2, 7, 64])
def test_neighbouring_counters_are_uncorrelated(lag):
    u = np.asarray(rng.uniform(rng.seed_key(2), (N,)), np.float64)
    r = np.corrcoef(u[:-lag], u[lag:])[0, 1]
    assert abs(r) < 5 / np.sqrt(N)


def test_sibling_keys_are_uncorrelated_and_differ():
    root = rng.seed_key(3)
    a = np.asarray(rng.uniform(rng.fold_in(root, 0), (N,)), np.float64)
    b = np.asarray(rng.uniform(rng.fold_in(root, 1), (N,)), np.float64)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(N)
    seeds = np.asarray(jax.vmap(rng.seed_key)(jnp.arange(1000)))
    assert len({tuple(k) for k in seeds}) == 1000


def test_bits_are_a_bijection_of_the_counter():
    b = np.asarray(rng.bits(rng.seed_key(4), (1 << 16,)))
    assert len(np.unique(b)) == b.size
    # every bit position is fair
    ones = np.unpackbits(b.view(np.uint8)).reshape(-1, 32).mean(0)
    assert np.all(np.abs(ones - 0.5) < 5 * 0.5 / np.sqrt(b.size))


def test_exponential_normal_and_pareto_have_their_laws():
    key = rng.seed_key(5)
    e = np.asarray(rng.exponential(rng.fold_in(key, 0), (N,)), np.float64)
    assert stats.kstest(e, "expon").pvalue > 1e-3
    z = np.asarray(rng.normal(rng.fold_in(key, 1), (N,)), np.float64)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    p = np.asarray(rng.pareto(rng.fold_in(key, 2), 2.5, (N,)), np.float64)
    assert stats.kstest(p, stats.pareto(2.5).cdf).pvalue > 1e-3


def test_rank_is_a_uniform_permutation():
    ranks = np.asarray(jax.vmap(lambda i: rng.rank(rng.fold_in(rng.seed_key(6), i), 4))(jnp.arange(4000)))
    assert np.all(np.sort(ranks, axis=1) == np.arange(4))
    first = np.bincount(ranks[:, 0], minlength=4)
    assert stats.chisquare(first).pvalue > 1e-3


def test_same_key_same_numbers_inside_and_outside_jit_and_vmap():
    key = rng.fold_in(rng.seed_key(7), 3)
    plain = np.asarray(rng.uniform(key, (5, 3)))
    jitted = np.asarray(jax.jit(lambda k: rng.uniform(k, (5, 3)))(key))
    keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(7), i))(jnp.arange(5))
    lane = np.asarray(jax.vmap(lambda k: rng.uniform(k, (5, 3)))(keys))[3]
    np.testing.assert_array_equal(plain, jitted)
    np.testing.assert_array_equal(plain, lane)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 12), columns=st.integers(1, 9))
def test_columns_are_the_per_key_streams_side_by_side(seed, rows, columns):
    keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(seed), i))(jnp.arange(columns))
    each_bits = np.stack([np.asarray(rng.bits(k, (rows,))) for k in keys], axis=1)
    np.testing.assert_array_equal(np.asarray(rng.bits_columns(keys, rows)), each_bits)
    # the same bits; the transform may differ in its last bit (XLA's log in a vector loop and
    # in its scalar tail are not the same code)
    each = np.stack([np.asarray(rng.normal(k, (rows,))) for k in keys], axis=1)
    np.testing.assert_allclose(np.asarray(rng.normal_columns(keys, rows)), each, rtol=1e-6, atol=1e-7)


def test_every_normal_the_generator_can_make_is_finite_antisymmetric_and_accurate():
    """All 2**24 bins, through the compiled generator as the engine compiles it: XLA's
    simplifier reassociates float constants (``1 + (x - 1 + 2**-24)`` became ``x``), so a
    check of the erfinv on inputs made in NumPy would not see what the program computes."""
    from scipy import special

    raw = jnp.arange(2**24, dtype=jnp.uint32) << 8
    z = np.asarray(jax.jit(rng.normal_of_bits)(raw), np.float64)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z[::-1], -z)
    centres = (2.0 * np.arange(2**24, dtype=np.float64) + 1.0) / 2**24 - 1.0
    exact = np.sqrt(2.0) * special.erfinv(centres)
    assert np.max(np.abs(z - exact) / np.abs(exact)) < 5e-7


def test_every_exponential_and_pareto_the_generator_can_make_is_finite_and_accurate():
    raw = jnp.arange(2**24, dtype=jnp.uint32) << 8
    e = np.asarray(jax.jit(rng.exponential_of_bits)(raw), np.float64)
    exact = -np.log1p(-np.arange(2**24, dtype=np.float64) / 2**24)
    assert np.isfinite(e).all() and e.min() == 0.0
    assert np.max(np.abs(e - exact) / np.maximum(exact, 2.0**-24)) < 2.5e-7
    p = np.asarray(jax.jit(rng.pareto_of_bits)(raw, jnp.float32(0.5)), np.float64)
    assert np.isfinite(p).all() and p.min() == 1.0


def test_normal_and_exponential_moments():
    key = rng.seed_key(8)
    z = np.asarray(rng.normal(rng.fold_in(key, 0), (N,)), np.float64)
    se = 1 / np.sqrt(N)
    assert abs(z.mean()) < 5 * se and abs(z.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(stats.skew(z)) < 5 * np.sqrt(6) * se and abs(stats.kurtosis(z)) < 5 * np.sqrt(24) * se
    e = np.asarray(rng.exponential(rng.fold_in(key, 1), (N,)), np.float64)
    assert abs(e.mean() - 1) < 5 * se and abs(e.var() - 1) < 5 * np.sqrt(8) * se
