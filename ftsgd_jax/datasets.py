"""The data behind the data-driven objectives, as float64 NumPy arrays.

One job: produce, reproducibly from a data seed, the samples that ``objectives`` turns into
the array leaves of an objective: synthetic logistic data, LIBSVM files, and the teacher
network's regression data (with the MLP's initial parameters).

Choices (CHOICE marks what the paper's public abstract leaves open; docs/reconstruction.md
lists them all):

Synthetic logistic data
    CHOICE: ``a_i ~ N(0, I/d)``, labels ``sign(a_i^T w)`` for a planted ``w ~ N(0, I)``, each
    flipped with probability ``label_noise``.
LIBSVM files
    Lines ``label idx:val ...`` with 1-based indices, read densely; labels in one of
    {-1, +1}, {0, 1}, {1, 2} (the lower one maps to -1).
Teacher regression (``mlp``)
    CHOICE: ``a_i ~ N(0, I)``, ``y_i = teacher(a_i) + target_noise * N(0, 1)`` for a teacher
    network of the student's shape, ``f(a) = w2^T tanh(W1 a + b1) + b2`` with parameters
    flattened as ``[W1 (row-major), b1, w2, b2]``. The initial parameters are a fixed small
    random draw (weights ``init_scale * N(0, 1/fan_in)``, biases 0), the same for every process.

Every draw comes from ``numpy.random.SeedSequence(data_seed)`` through independent streams
(data, planted parameters, init), so e.g. changing ``samples`` leaves the init unchanged.
Errors are :class:`ConfigError` naming the ``objective.*`` key at fault.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from ftsgd_jax.errors import ConfigError

MAX_ENTRIES = 1 << 26    # dense data matrix cap (samples * dim), 256 MiB in float32
_SYNTH_DIM = 10          # synthetic logistic data when dim = 0
_SYNTH_SAMPLES = 512     # synthetic logistic data when samples = 0
_LABEL_SETS = ((-1.0, 1.0), (0.0, 1.0), (1.0, 2.0))


def streams(data_seed: int, count: int) -> list[np.random.Generator]:
    """``count`` independent generators from one data seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(data_seed).spawn(count)]


def check_entries(n: int, dim: int) -> None:
    """Refuse a dense ``n x dim`` data matrix above :data:`MAX_ENTRIES`."""
    if n * dim > MAX_ENTRIES:
        raise ConfigError("objective.samples", f"samples * dim = {n * dim} exceeds the dense-data cap {MAX_ENTRIES}")


# ----------------------------------------------------------------------- logistic data


def synthetic_logistic(dim: int, samples: int, label_noise: float, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D), labels (N,) in {-1, +1}); ``dim``/``samples`` 0 mean 10 and 512."""
    dim = dim or _SYNTH_DIM
    n = samples or _SYNTH_SAMPLES
    check_entries(n, dim)
    features, planted, flips = streams(data_seed, 3)
    # Rows of norm ~1 keep L ~ 1/4 + lam whatever the dimension.
    A = features.standard_normal((n, dim)) / math.sqrt(dim)
    b = np.where(A @ planted.standard_normal(dim) >= 0, 1.0, -1.0)
    b[flips.random(n) < label_noise] *= -1.0
    return A, b


def libsvm_data(path: str, samples: int, dim: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``samples`` rows of a LIBSVM file (0: all), zero-padded to ``dim`` features
    (0: the file's largest index), and the sha256 of the bytes they were parsed from."""
    A, b, digest = read_libsvm_with_digest(path)
    n_file, d_file = A.shape
    n = samples or n_file
    if n > n_file:
        raise ConfigError("objective.samples", f"{path} has only {n_file} samples, got samples = {n}")
    dim = dim or d_file
    if dim < d_file:
        raise ConfigError(
            "objective.dim", f"{path} has features up to index {d_file}; dim must be 0 (from the file) or >= {d_file}, got {dim}"
        )
    if dim == 0:
        raise ConfigError("objective.path", f"{path} has no features; give objective.dim")
    check_entries(n, dim)
    return np.pad(A[:n], ((0, 0), (0, dim - d_file))), b[:n], digest


def read_libsvm(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a LIBSVM file: lines ``label idx:val idx:val ...`` with 1-based indices.

    Returns dense ``(features (N, D) float64, labels (N,) in {-1, +1})`` with ``D`` the
    largest index. Blank lines and ``#`` comments are skipped; indices need not be sorted
    but may not repeat. Labels must all lie in one of {-1, +1}, {0, 1}, {1, 2} (lower maps
    to -1). Any problem raises ``ConfigError("objective.path", "<path>:<line>: ...")``.
    """
    return read_libsvm_with_digest(path)[:2]


def read_libsvm_with_digest(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    """:func:`read_libsvm` and the sha256 of the very bytes parsed: hashing the file again
    later could describe another version of it than the one the data came from."""
    try:
        content = Path(path).read_bytes()
        text = content.decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("objective.path", f"cannot read {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    rows, labels, linenos = [], [], []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            label, feats = _parse_line(path, lineno, line)
            rows.append(feats)
            labels.append(label)
            linenos.append(lineno)
    if not rows:
        raise ConfigError("objective.path", f"{path}: no samples (every line is blank or a comment)")
    b = _map_labels(path, np.asarray(labels), linenos)
    d = max((max(f) for f in rows if f), default=0)
    check_entries(len(rows), d)
    A = np.zeros((len(rows), d))
    for i, feats in enumerate(rows):
        for idx, val in feats.items():
            A[i, idx - 1] = val
    return A, b, hashlib.sha256(content).hexdigest()


def _parse_line(path, lineno: int, line: str) -> tuple[float, dict[int, float]]:
    def bad(msg: str) -> ConfigError:
        return ConfigError("objective.path", f"{path}:{lineno}: {msg}")

    label_text, *tokens = line.split()
    try:
        label = float(label_text)
    except ValueError:
        raise bad(f"label {label_text!r} is not a number") from None
    feats: dict[int, float] = {}
    for tok in tokens:
        idx_text, sep, val_text = tok.partition(":")
        try:
            idx, val = int(idx_text), float(val_text)
        except ValueError:
            raise bad(f"expected index:value, got {tok!r}") from None
        if not sep or idx < 1:
            raise bad(f"expected index:value with a 1-based index, got {tok!r}")
        if not math.isfinite(val):
            raise bad(f"value {val_text!r} of feature {idx} is not finite")
        if idx in feats:
            raise bad(f"feature index {idx} repeats")
        feats[idx] = val
    return label, feats


def _map_labels(path, labels: np.ndarray, linenos: list[int]) -> np.ndarray:
    present = set(labels.tolist())
    for low, high in _LABEL_SETS:
        if present <= {low, high}:
            return np.where(labels == high, 1.0, -1.0)
    known = {v for pair in _LABEL_SETS for v in pair}
    odd = [i for i, v in enumerate(labels) if v not in known]
    where = f"{path}:{linenos[odd[0]]}: label {labels[odd[0]]:g}; " if odd else f"{path}: "
    raise ConfigError(
        "objective.path",
        f"{where}labels {sorted(present)} must all be in one of {{-1, +1}}, {{0, 1}}, {{1, 2}}",
    )


# ------------------------------------------------------------------ teacher regression


def mlp_dim(inputs: int, hidden: int) -> int:
    """The number of flattened parameters of a one-hidden-layer network."""
    return hidden * (inputs + 2) + 1


def teacher_regression(
    inputs: int, hidden: int, samples: int, target_noise: float, init_scale: float, data_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (N, inputs), targets (N,), initial parameters (mlp_dim,)) of the ``mlp`` kind."""
    check_entries(samples, max(inputs, mlp_dim(inputs, hidden)))
    teacher_rng, data_rng, init_rng = streams(data_seed, 3)
    # A teacher of scale 1.5 puts pre-activations in tanh's curved range: a non-linear target.
    teacher = _init(teacher_rng, inputs, hidden, 1.5)
    teacher[hidden * inputs:hidden * (inputs + 1)] = 0.5 * teacher_rng.standard_normal(hidden)
    A = data_rng.standard_normal((samples, inputs))
    y = np.asarray(_predict(teacher, A, inputs, hidden)) + target_noise * data_rng.standard_normal(samples)
    return A, y, _init(init_rng, inputs, hidden, init_scale)


def _init(generator: np.random.Generator, inputs: int, hidden: int, scale: float) -> np.ndarray:
    """Flat parameters: weights ``scale * N(0, 1/fan_in)``, biases 0 (x0 = 0 would be a
    saddle where all hidden units stay identical)."""
    W1 = scale * generator.standard_normal((hidden, inputs)) / math.sqrt(inputs)
    w2 = scale * generator.standard_normal(hidden) / math.sqrt(hidden)
    return np.concatenate([W1.ravel(), np.zeros(hidden), w2, np.zeros(1)])


def _predict(theta: np.ndarray, A: np.ndarray, inputs: int, hidden: int) -> np.ndarray:
    """The network in float64 NumPy (the objective's JAX twin runs in the run's dtype), so
    generated targets do not depend on x64."""
    k = hidden * inputs
    W1, b1 = theta[:k].reshape(hidden, inputs), theta[k:k + hidden]
    w2, b2 = theta[k + hidden:k + 2 * hidden], theta[k + 2 * hidden]
    return np.tanh(A @ W1.T + b1) @ w2 + b2
