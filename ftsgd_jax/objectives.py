"""The objective functions Q: loss, exact gradient, unbiased stochastic gradient, known optimum.

One job: turn the ``[objective]`` section of a config into an :class:`Objective`, a JAX
pytree whose pure methods the algorithms call (``loss``, ``grad``, ``stochastic_grad``).
The data (Hessian diagonal, data matrix, labels, ...) are array leaves; the kind, the
dimension and every scalar constant are static, so an objective can be closed over or
passed through ``jit`` and a sweep compiles once per objective.

The kinds are the registry :data:`OBJECTIVES` (kind -> :class:`ObjectiveKind`: its keys
with their defaults, its builder and its pure functions), read live by the config, so a
kind registered from a script is valid everywhere (docs/extending.md).

Built-in kinds (README "The algorithms") and the choices made here (CHOICE marks what the
paper's public abstract leaves open; docs/reconstruction.md lists them all):

``quadratic``
    ``Q(x) = 1/2 sum_i h_i (x_i - x*_i)^2`` with ``h = linspace(mu, L, dim)`` and ``Q* = 0``.
    Noise: ``G = grad Q + N(0, sigma^2/dim I)``, so ``E||G - grad Q||^2 = sigma^2`` exactly.
    CHOICE: ``x_star`` is a scalar fill (default 1.0), an explicit list, or ``"random"``
    (standard normal per coordinate, drawn from ``data_seed``).
``logistic``
    ``Q(x) = mean_i log(1 + exp(-b_i a_i^T x)) + lam/2 ||x||^2``, ``b_i in {-1, +1}``, no
    intercept (add a constant feature to the data for one). Noise: the gradient on ``batch``
    samples drawn uniformly with replacement. Data: synthetic or a LIBSVM file (``path``),
    see :mod:`ftsgd_jax.datasets`. ``x*`` unknown; ``mu = lam``; CHOICE:
    ``L = lambda_max(A^T A / N)/4 + lam`` (at most ``max||a_i||^2/4 + lam``; the latter is
    used when both sides of ``A`` exceed 2048).
``double_well``
    The impossibility function: without a majority, processes may settle in different
    wells (README "Figures"). CHOICE for ``dim > 1``: the separable sum
    ``Q(x) = sum_i q(x_i)``, ``q(x) = -exp(-(x-1)^2) - exp(-(x+1)^2)``, so every coordinate
    has its own two wells at ``+-x_m`` (``x_m ~ 0.9575``, slightly inside +-1 because the wells
    attract each other) and ``x0 = 0`` is a critical point (a maximum). ``x_star = None``
    (not unique); ``q_star = dim * q(x_m)``, found by Newton's method in float64.
    Noise as for ``quadratic``.
``mlp``
    CHOICE: regression with a one-hidden-layer tanh network
    ``f(a) = w2^T tanh(W1 a + b1) + b2`` and loss ``mean 1/2 (f(a_i) - y_i)^2`` on a teacher
    network's data (:func:`ftsgd_jax.datasets.teacher_regression`, which also draws ``x0``).
    ``dim = hidden * (inputs + 2) + 1`` (derived; a given ``dim`` must equal it). Minibatch
    noise as for ``logistic``.

Data come from ``data_seed``, so an objective does not depend on the run seed unless
``data_seed = "run"`` asks for it. Arrays take JAX's default float dtype at construction
(float32, or float64 under ``jax.enable_x64``).

Random keys: ``stochastic_grad`` takes a ``ftsgd_jax.rng`` key (``uint32[2]``), the
package's counter-based generator, and vmaps over ``x`` and ``key``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import datasets, rng
from ftsgd_jax.errors import ConfigError, choice, closest
from ftsgd_jax.objective_keys import KEY_CHECKS, Check

Array = jax.Array

_EIG_SIDE = 2048         # largest Gram matrix side for the exact logistic L


def objective_defaults(kind: str) -> dict[str, Any]:
    """Every key of ``kind`` with its default, ``kind`` first, for writing a complete manifest.

    ``0`` means automatic for the keys of ``ObjectiveKind.automatic``: ``logistic.dim`` (10
    for synthetic data, the file's largest feature index for a file), ``logistic.samples``
    (512 synthetic, all rows of a file) and ``mlp.dim`` (``hidden * (inputs + 2) + 1``).
    ``Objective.config`` gives the resolved values.
    """
    choice("objective.kind", kind, OBJECTIVES)
    return {"kind": kind, **OBJECTIVES[kind].defaults}


# --------------------------------------------------------------------------- the pytree


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
    """An objective Q. Build with :func:`make_objective`.

    Static fields: ``kind``, ``dim``, ``noise`` (``"gaussian"`` or ``"minibatch"``),
    ``sigma`` (total noise standard deviation, gaussian kinds; else None), ``batch``
    (minibatch kinds; else None), ``mu``/``L`` (strong convexity / smoothness constants
    where known, else None), ``q_star`` (optimal value where known), ``bound`` (see
    :meth:`grad_bound`), ``info`` (kind-specific derived facts, see :attr:`facts`),
    ``spec`` (the resolved config), ``data_sha256`` (the sha256 of the file the data were
    parsed from, as read; None for data not read from a file). Array fields: ``x0`` (d,),
    ``x_star`` (d,) or None, ``data`` (dict of arrays).
    """

    kind: str
    dim: int
    noise: str
    sigma: float | None
    batch: int | None
    mu: float | None
    L: float | None
    q_star: float | None
    bound: tuple[float, float] | None
    info: tuple[tuple[str, Any], ...]
    spec: tuple[tuple[str, Any], ...]
    x0: Array
    x_star: Array | None
    data: dict[str, Array]
    data_sha256: str | None = None

    # The methods go through jitted module functions (the objective is a pytree argument),
    # so an eager call compiles once instead of dispatching op by op; under an outer
    # jit/vmap/grad they simply inline.

    def loss(self, x: Array) -> Array:
        """Q(x), a scalar."""
        return _loss(self, x)

    def grad(self, x: Array) -> Array:
        """The exact gradient of Q at x, shape (d,)."""
        return _grad(self, x)

    def stochastic_grad(self, x: Array, key: Array) -> Array:
        """An unbiased stochastic gradient G(x, key), shape (d,). Pure; vmaps over x and key."""
        return _stochastic_grad(self, x, key)

    def noise_variance(self, x: Array) -> Array:
        """``E||G(x) - grad Q(x)||^2`` exactly: ``sigma^2`` for gaussian kinds; for minibatch
        kinds ``mean_i ||g_i(x) - grad(x)||^2 / batch`` over the per-sample gradients g_i."""
        return _noise_variance(self, x)

    @property
    def g_max(self) -> float | None:
        """A bound on ``||grad Q||`` over all of R^d where one exists (double_well, and
        logistic with lam = 0), else None. For minibatch kinds it bounds ``||G||`` too."""
        if self.bound is None or self.bound[1] != 0.0:
            return None
        return self.bound[0]

    def grad_bound(self, radius: float, tail: float | None = None) -> float | None:
        """A bound on the gradient norm over the ball ``||x - x0|| <= radius``; None for mlp.

        With ``tail=None`` it bounds ``||grad Q(x)||``. For minibatch kinds the same number
        bounds every stochastic gradient ``||G(x)||`` surely. For gaussian kinds the noise is
        unbounded; with ``tail = delta`` in (0, 1) the result bounds ``||G(x)||`` with
        probability at least ``1 - delta`` per draw, by Gaussian concentration of the
        ``(sigma/sqrt(d))``-Lipschitz norm: ``||noise|| <= sigma (1 + sqrt(2 ln(1/delta) / d))``.
        Host-side helper (plain floats); fine to call under ``jit`` as the fields are static.
        """
        if self.bound is None:
            return None
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        c0, c1 = self.bound
        total = c0 + c1 * radius
        if tail is not None and self.noise == "gaussian":
            if not 0.0 < tail < 1.0:
                raise ValueError(f"tail must be in (0, 1), got {tail}")
            total += self.sigma * (1.0 + math.sqrt(2.0 * math.log(1.0 / tail) / self.dim))
        return total

    @property
    def config(self) -> dict[str, Any]:
        """The resolved ``[objective]`` section (every key; automatic values filled in)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.spec}

    @property
    def facts(self) -> dict[str, Any]:
        """Kind-specific derived facts, e.g. ``minimizer`` for double_well (minima at
        ``+-minimizer`` per coordinate) and ``a_max`` (largest ``||a_i||``) for logistic."""
        return dict(self.info)


jax.tree_util.register_dataclass(
    Objective,
    data_fields=["x0", "x_star", "data"],
    meta_fields=["kind", "dim", "noise", "sigma", "batch", "mu", "L", "q_star", "bound", "info", "spec", "data_sha256"],
)


@dataclasses.dataclass(frozen=True)
class ObjectiveKind:
    """An objective kind of the registry :data:`OBJECTIVES`.

    defaults: every key but ``kind``, in manifest order, with its default.
    build: ``cfg -> Objective`` from the checked keys (``kind`` included, ``data_seed``
        resolved); it fixes the static facts the theory reads (``mu``, ``L``, ``x_star``,
        ``q_star``, the gradient bound), fills in automatic keys of ``cfg`` before
        :func:`spec_of`, and builds arrays with :func:`float_array` and :func:`vector_of`.
    loss, grad: ``(objective, x (d,)) -> Q(x)`` and the exact gradient ``(d,)``, pure JAX.
    stochastic_grad: ``(objective, x, key) -> G``, unbiased, pure, vmappable over x and key
        (:func:`gaussian_stochastic_grad`: the gradient plus ``N(0, sigma^2/d I)``).
    noise_variance: ``(objective, x) -> E||G - grad Q||^2`` exactly (:func:`gaussian_variance`).
    checks: the kind's own checks by key; any other key is checked by ``objective_keys.KEY_CHECKS``.
    automatic: keys whose integer 0 means "the builder fills it in" and skips the check.
    """

    defaults: Mapping[str, Any]
    build: Callable[[dict[str, Any]], Objective]
    loss: Callable[[Objective, Array], Array]
    grad: Callable[[Objective, Array], Array]
    stochastic_grad: Callable[[Objective, Array, Array], Array]
    noise_variance: Callable[[Objective, Array], Array]
    checks: Mapping[str, Check] = dataclasses.field(default_factory=dict)
    automatic: frozenset[str] = frozenset()

    def __post_init__(self):
        # A key without a check would surface as a KeyError at the first config that uses
        # the kind; refusing it here points at the registration instead.
        if "kind" in self.defaults:
            raise ValueError("ObjectiveKind.defaults must not hold 'kind' (the registry's key names it)")
        unchecked = [key for key in self.defaults if key not in self.checks and key not in KEY_CHECKS]
        if unchecked:
            raise ValueError(f"ObjectiveKind keys {unchecked} have no check: add them to checks")

    def check(self, key: str) -> Check:
        """The check of one of its keys."""
        return self.checks[key] if key in self.checks else KEY_CHECKS[key]


@jax.jit
def _loss(obj: Objective, x: Array) -> Array:
    return OBJECTIVES[obj.kind].loss(obj, _as_x(obj, x))


@jax.jit
def _grad(obj: Objective, x: Array) -> Array:
    return OBJECTIVES[obj.kind].grad(obj, _as_x(obj, x))


@jax.jit
def _stochastic_grad(obj: Objective, x: Array, key: Array) -> Array:
    return OBJECTIVES[obj.kind].stochastic_grad(obj, _as_x(obj, x), key)


@jax.jit
def _noise_variance(obj: Objective, x: Array) -> Array:
    return OBJECTIVES[obj.kind].noise_variance(obj, _as_x(obj, x))


def _as_x(obj: Objective, x: Array) -> Array:
    """x as a float array of shape (dim,); shape errors surface at trace time, not as NaNs."""
    x = jnp.asarray(x)
    if x.shape != (obj.dim,):
        raise ValueError(f"{obj.kind} objective expects x of shape ({obj.dim},), got {x.shape}")
    return x.astype(jnp.promote_types(x.dtype, obj.x0.dtype))


def _float_dtype():
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def float_array(a) -> Array:
    """``a`` as an array leaf of an objective: JAX's default float dtype, from float64 values."""
    return jnp.asarray(np.asarray(a, np.float64), dtype=_float_dtype())


def vector_of(field: str, value: float | tuple[float, ...], dim: int) -> np.ndarray:
    """A (dim,) float64 vector from a checked scalar fill or list (``KEY_CHECKS["x0"]``)."""
    if isinstance(value, tuple):
        if len(value) != dim:
            raise ConfigError(field, f"a list must have dim = {dim} entries, got {len(value)}")
        return np.asarray(value, np.float64)
    return np.full(dim, value, np.float64)


def spec_of(cfg: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """``Objective.spec`` of resolved keys: every key of the kind, in its defaults' order."""
    return tuple((k, cfg[k]) for k in objective_defaults(cfg["kind"]))


# ------------------------------------------------------------------ gaussian-noise kinds


def gaussian_stochastic_grad(obj: Objective, x: Array, key: Array) -> Array:
    """The kind's exact gradient plus ``N(0, sigma^2/dim I)``: total variance ``obj.sigma^2``."""
    # Per-coordinate variance sigma^2/d makes the TOTAL variance sigma^2, independent of d.
    noise = rng.normal(key, x.shape).astype(x.dtype)
    return OBJECTIVES[obj.kind].grad(obj, x) + (obj.sigma / math.sqrt(obj.dim)) * noise


def stochastic_grad_columns(obj: Objective, x: Array, keys: Array) -> Array:
    """(d, n): column p is ``obj.stochastic_grad(x[p], keys[p])``, for ``x`` (n, d), ``keys`` (n, 2).

    For a kind with :func:`gaussian_stochastic_grad` the noise is drawn in this layout
    directly (``rng.normal_columns``, the same numbers), so that XLA vectorises it along
    the processes rather than along d; any other kind is vmapped.
    """
    kind = OBJECTIVES[obj.kind]
    if kind.stochastic_grad is not gaussian_stochastic_grad:
        return jax.vmap(obj.stochastic_grad, out_axes=1)(x, keys)
    exact = jax.vmap(lambda point: kind.grad(obj, _as_x(obj, point)), out_axes=1)(x)
    return exact + (obj.sigma / math.sqrt(obj.dim)) * rng.normal_columns(keys, obj.dim).astype(exact.dtype)


def gaussian_variance(obj: Objective, x: Array) -> Array:
    """The noise variance of :func:`gaussian_stochastic_grad`, ``sigma^2``."""
    return jnp.asarray(obj.sigma**2, dtype=x.dtype)


def _quad_loss(obj: Objective, x: Array) -> Array:
    return 0.5 * jnp.sum(obj.data["h"] * (x - obj.x_star) ** 2)


def _quad_grad(obj: Objective, x: Array) -> Array:
    return obj.data["h"] * (x - obj.x_star)


def _dw_q(x, exp=jnp.exp):
    """The 1-d double well q; ``exp`` lets the float64 NumPy construction share the formula."""
    return -exp(-((x - 1.0) ** 2)) - exp(-((x + 1.0) ** 2))


def _dw_dq(x, exp=jnp.exp):
    return 2.0 * (x - 1.0) * exp(-((x - 1.0) ** 2)) + 2.0 * (x + 1.0) * exp(-((x + 1.0) ** 2))


def _dw_d2q(x, exp=jnp.exp):
    u, v = x - 1.0, x + 1.0
    return (2.0 - 4.0 * u**2) * exp(-(u**2)) + (2.0 - 4.0 * v**2) * exp(-(v**2))


def _dw_loss(obj: Objective, x: Array) -> Array:
    return jnp.sum(_dw_q(x))


def _dw_grad(obj: Objective, x: Array) -> Array:
    return _dw_dq(x)


# ------------------------------------------------------------------- minibatch kinds


def _minibatch_indices(obj: Objective, key: Array) -> Array:
    n = obj.data["A"].shape[0]
    return jnp.minimum((rng.uniform(key, (obj.batch,)) * n).astype(jnp.int32), n - 1)


def _logistic_data_grad(x: Array, A: Array, b: Array) -> Array:
    """Gradient of mean_i log(1 + exp(-b_i a_i^T x)) over the rows given."""
    weights = -b * jax.nn.sigmoid(-b * (A @ x))
    return A.T @ weights / A.shape[0]


def _logistic_loss(obj: Objective, x: Array) -> Array:
    A, b, lam = obj.data["A"], obj.data["b"], obj.config["lam"]
    # logaddexp(0, -z) = log(1 + e^{-z}) without overflow for large |z|.
    return jnp.mean(jnp.logaddexp(0.0, -b * (A @ x))) + 0.5 * lam * jnp.dot(x, x)


def _logistic_grad(obj: Objective, x: Array) -> Array:
    return _logistic_data_grad(x, obj.data["A"], obj.data["b"]) + obj.config["lam"] * x


def _logistic_sgrad(obj: Objective, x: Array, key: Array) -> Array:
    idx = _minibatch_indices(obj, key)
    return _logistic_data_grad(x, obj.data["A"][idx], obj.data["b"][idx]) + obj.config["lam"] * x


def _logistic_variance(obj: Objective, x: Array) -> Array:
    A, b = obj.data["A"], obj.data["b"]
    per_sample = (-b * jax.nn.sigmoid(-b * (A @ x)))[:, None] * A
    return _spread(per_sample) / obj.batch


def _spread(per_sample: Array) -> Array:
    """mean_i ||g_i - mean g||^2: the variance of one uniformly drawn sample gradient."""
    return jnp.mean(jnp.sum((per_sample - per_sample.mean(axis=0)) ** 2, axis=1))


def _mlp_shapes(obj: Objective) -> tuple[int, int]:
    cfg = obj.config
    return cfg["inputs"], cfg["hidden"]


def _mlp_unflatten(theta: Array, inputs: int, hidden: int):
    """Split the flat vector into (W1 (hidden, inputs), b1 (hidden,), w2 (hidden,), b2 ())."""
    k = hidden * inputs
    W1 = theta[:k].reshape(hidden, inputs)
    return W1, theta[k:k + hidden], theta[k + hidden:k + 2 * hidden], theta[k + 2 * hidden]


def _mlp_predict(theta: Array, A: Array, inputs: int, hidden: int) -> Array:
    W1, b1, w2, b2 = _mlp_unflatten(theta, inputs, hidden)
    return jnp.tanh(A @ W1.T + b1) @ w2 + b2


def _mlp_data_loss(theta: Array, A: Array, y: Array, inputs: int, hidden: int) -> Array:
    return 0.5 * jnp.mean((_mlp_predict(theta, A, inputs, hidden) - y) ** 2)


def _mlp_loss(obj: Objective, x: Array) -> Array:
    return _mlp_data_loss(x, obj.data["A"], obj.data["y"], *_mlp_shapes(obj))


def _mlp_grad(obj: Objective, x: Array) -> Array:
    return jax.grad(_mlp_data_loss)(x, obj.data["A"], obj.data["y"], *_mlp_shapes(obj))


def _mlp_sgrad(obj: Objective, x: Array, key: Array) -> Array:
    idx = _minibatch_indices(obj, key)
    return jax.grad(_mlp_data_loss)(x, obj.data["A"][idx], obj.data["y"][idx], *_mlp_shapes(obj))


def _mlp_variance(obj: Objective, x: Array) -> Array:
    inputs, hidden = _mlp_shapes(obj)

    def one(a, y):
        return jax.grad(_mlp_data_loss)(x, a[None], y[None], inputs, hidden)

    return _spread(jax.vmap(one)(obj.data["A"], obj.data["y"])) / obj.batch


# ------------------------------------------------------------------------ validation


def _is_int_zero(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value == 0


def _validate(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in and every value checked; unknown keys rejected with a hint."""
    entry = OBJECTIVES[kind]
    allowed = list(objective_defaults(kind))
    for key in spec:
        if not isinstance(key, str):
            raise ConfigError("objective", f"keys must be strings, got {key!r}")
        if key not in allowed:
            others = [k for k, other in OBJECTIVES.items() if key in other.defaults]
            where = f" (it belongs to kind {', '.join(map(repr, others))})" if others else ""
            raise ConfigError(
                f"objective.{key}",
                f"unknown key for kind {kind!r}; allowed: {', '.join(allowed)}{closest(key, allowed)}{where}",
            )
    cfg = objective_defaults(kind)
    cfg.update(spec)
    for key in entry.defaults:
        field = f"objective.{key}"
        if key in entry.automatic and _is_int_zero(cfg[key]):
            continue
        try:
            cfg[key] = entry.check(key)(field, cfg[key])
        except ConfigError as exc:
            if key in entry.automatic:
                raise ConfigError(field, f"need 0 (automatic) or {exc.message.removeprefix('need ')}") from None
            raise
    return cfg


def _resolve_seed(cfg: dict[str, Any], seed: int) -> int:
    if cfg["data_seed"] != "run":
        return cfg["data_seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError("seed", f"must be an integer >= 0 (objective.data_seed = 'run' uses it), got {seed!r}")
    return int(seed)


# ------------------------------------------------------------------------ builders


def make_objective(spec: Mapping[str, Any], seed: int = 0) -> Objective:
    """Build the objective of an ``[objective]`` config section.

    ``spec`` maps keys of its kind (:func:`objective_defaults`) to values; ``kind`` defaults
    to ``"quadratic"`` and missing keys take their defaults. ``seed`` (the run seed) is used
    only where ``data_seed = "run"``. Raises :class:`ConfigError` naming the field.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError("objective", f"must be a table of keys, got {type(spec).__name__}")
    kind = choice("objective.kind", spec.get("kind", "quadratic"), OBJECTIVES)
    cfg = _validate(kind, spec)
    if "data_seed" in cfg:
        cfg["data_seed"] = _resolve_seed(cfg, seed)
    return OBJECTIVES[kind].build(cfg)


def _build_quadratic(cfg: dict[str, Any]) -> Objective:
    dim, mu, L = cfg["dim"], cfg["mu"], cfg["L"]
    if L < mu:
        raise ConfigError("objective.L", f"must be >= objective.mu = {mu}, got {L}")
    if dim == 1 and L != mu:
        raise ConfigError("objective.L", f"with dim = 1 the Hessian has one eigenvalue; L must equal mu = {mu}, got {L}")
    h = np.linspace(mu, L, dim)
    x0 = vector_of("objective.x0", cfg["x0"], dim)
    if cfg["x_star"] == "random":
        x_star = datasets.streams(cfg["data_seed"], 1)[0].standard_normal(dim)
    else:
        x_star = vector_of("objective.x_star", cfg["x_star"], dim)
    return Objective(
        kind="quadratic", dim=dim, noise="gaussian", sigma=cfg["sigma"], batch=None,
        mu=mu, L=L, q_star=0.0,
        bound=(L * float(np.linalg.norm(x0 - x_star)), L),
        info=(), spec=spec_of(cfg),
        x0=float_array(x0), x_star=float_array(x_star), data={"h": float_array(h)},
    )


def _dw_constants() -> tuple[float, float, float, float]:
    """(minimizer x_m, q(x_m), sup|q'|, sup|q''|) in float64.

    Newton on q' = 0 from x = 1 for the minimizer; suprema on a fine grid plus the grid's
    worst-case miss (step/2 times a bound on the next derivative: |q''| <= 4, |q'''| <= 8).
    """
    x = 1.0
    for _ in range(50):
        step = _dw_dq(x, math.exp) / _dw_d2q(x, math.exp)
        x -= step
        if abs(step) < 1e-15:
            break
    step_h = 1e-4
    grid = np.arange(-10.0, 10.0 + step_h, step_h)
    sup_dq = float(np.max(np.abs(_dw_dq(grid, np.exp)))) + step_h / 2 * 4.0
    sup_d2q = float(np.max(np.abs(_dw_d2q(grid, np.exp)))) + step_h / 2 * 8.0
    return x, _dw_q(x, math.exp), sup_dq, sup_d2q


def _build_double_well(cfg: dict[str, Any]) -> Objective:
    dim = cfg["dim"]
    x_m, q_m, sup_dq, sup_d2q = _dw_constants()
    return Objective(
        kind="double_well", dim=dim, noise="gaussian", sigma=cfg["sigma"], batch=None,
        mu=None, L=sup_d2q, q_star=dim * q_m,
        bound=(math.sqrt(dim) * sup_dq, 0.0),
        info=(("minimizer", x_m),), spec=spec_of(cfg),
        x0=float_array(vector_of("objective.x0", cfg["x0"], dim)), x_star=None, data={},
    )


def _logistic_L(A: np.ndarray, lam: float) -> tuple[float, float]:
    """(L, max ||a_i||): the exact lambda_max(A^T A / N)/4 + lam when a Gram side is small."""
    n, d = A.shape
    a_max = float(np.sqrt(np.max(np.sum(A**2, axis=1))))
    if min(n, d) > _EIG_SIDE:
        return a_max**2 / 4.0 + lam, a_max
    gram = A.T @ A if d <= n else A @ A.T
    return float(np.linalg.eigvalsh(gram)[-1]) / n / 4.0 + lam, a_max


def _build_logistic(cfg: dict[str, Any]) -> Objective:
    if cfg["path"]:
        A, b, digest = datasets.libsvm_data(cfg["path"], cfg["samples"], cfg["dim"])
    else:
        A, b = datasets.synthetic_logistic(cfg["dim"], cfg["samples"], cfg["label_noise"], cfg["data_seed"])
        digest = None
    cfg["samples"], cfg["dim"] = A.shape
    dim, lam = cfg["dim"], cfg["lam"]
    x0 = vector_of("objective.x0", cfg["x0"], dim)
    L, a_max = _logistic_L(A, lam)
    return Objective(
        kind="logistic", dim=dim, noise="minibatch", sigma=None, batch=cfg["batch"],
        mu=lam if lam > 0 else None, L=L, q_star=None,
        # ||sample gradient|| <= ||a_i|| because the sigmoid weight is in (0, 1).
        bound=(a_max + lam * float(np.linalg.norm(x0)), lam),
        info=(("a_max", a_max),), spec=spec_of(cfg),
        x0=float_array(x0), x_star=None, data={"A": float_array(A), "b": float_array(b)}, data_sha256=digest,
    )


def _build_mlp(cfg: dict[str, Any]) -> Objective:
    inputs, hidden = cfg["inputs"], cfg["hidden"]
    dim = datasets.mlp_dim(inputs, hidden)
    if cfg["dim"] not in (0, dim):
        raise ConfigError(
            "objective.dim",
            f"an mlp with inputs = {inputs}, hidden = {hidden} has hidden * (inputs + 2) + 1 = {dim} "
            f"parameters; leave dim out (0 = derived) or set it to {dim}, got {cfg['dim']}",
        )
    cfg["dim"] = dim
    A, y, x0 = datasets.teacher_regression(
        inputs, hidden, cfg["samples"], cfg["target_noise"], cfg["init_scale"], cfg["data_seed"]
    )
    return Objective(
        kind="mlp", dim=dim, noise="minibatch", sigma=None, batch=cfg["batch"],
        mu=None, L=None, q_star=None, bound=None, info=(), spec=spec_of(cfg),
        x0=float_array(x0), x_star=None, data={"A": float_array(A), "y": float_array(y)},
    )


OBJECTIVES: dict[str, ObjectiveKind] = {
    "quadratic": ObjectiveKind(
        {"dim": 10, "mu": 1.0, "L": 1.0, "sigma": 1.0, "x0": 0.0, "x_star": 1.0, "data_seed": 0},
        _build_quadratic, _quad_loss, _quad_grad, gaussian_stochastic_grad, gaussian_variance,
    ),
    "logistic": ObjectiveKind(
        {"dim": 0, "samples": 0, "batch": 16, "lam": 0.01, "label_noise": 0.1, "data_seed": 0, "path": "", "x0": 0.0},
        _build_logistic, _logistic_loss, _logistic_grad, _logistic_sgrad, _logistic_variance,
        automatic=frozenset({"dim", "samples"}),
    ),
    "double_well": ObjectiveKind(
        {"dim": 1, "sigma": 1.0, "x0": 0.0},
        _build_double_well, _dw_loss, _dw_grad, gaussian_stochastic_grad, gaussian_variance,
    ),
    "mlp": ObjectiveKind(
        {"dim": 0, "inputs": 4, "hidden": 16, "samples": 512, "batch": 16, "target_noise": 0.1, "init_scale": 0.5,
         "data_seed": 0},
        _build_mlp, _mlp_loss, _mlp_grad, _mlp_sgrad, _mlp_variance,
        automatic=frozenset({"dim"}),
    ),
}
"""Every objective kind: ``objective.kind`` -> :class:`ObjectiveKind`. Read live by
:func:`make_objective` and :func:`objective_defaults`, so a kind added here or from a script
before its first run is valid everywhere (docs/extending.md)."""
