"""theory/ssem.py: the on-disk cache of the lambdified code (issue 4).

The first call derives with sympy and writes the generated source to ``$COLLAPSEKIT_CACHE``; later
processes answer from it without importing sympy.  Checked here: (a) the cached functions give the
same values as freshly lambdified ones, exactly, on a grid; (b) a second process answers alpha*,
beta* (and the CLI guideline) without importing sympy; (c) corrupted, tampered or stale files
are ignored and regenerated.  Reference values come from the spec's closed forms (ssem.md R5).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from theory import ssem

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("code", "self-excluded", "common", "r10")


def _clear() -> None:
    ssem._numeric.cache_clear()
    ssem._num_r10.cache_clear()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty cache directory for this test; the process-level caches are reset around it."""
    path = tmp_path / "cache"
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(path))
    monkeypatch.delenv("COLLAPSEKIT_NO_CACHE", raising=False)
    _clear()
    yield path
    _clear()


def _alpha_star_code(K: int, n: int, tau: float) -> float:
    """ssem.md R5 (code variant): alpha* = (1 + (Kn-1) u) / (n (1 + (K-1) u)), u = exp(-K/((K-1) tau))."""
    u = math.exp(-K / ((K - 1) * tau))
    return (1 + (K * n - 1) * u) / (n * (1 + (K - 1) * u))


def _is_cached(func) -> bool:
    return func.__code__.co_filename.startswith("<theory.ssem cached")


def _outcome(func, args):
    """The value, or the exception type (a domain error must be the same error on both paths)."""
    try:
        return func(*args)
    except (ArithmeticError, ValueError) as exc:
        return type(exc).__name__


def _same(x, y) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return type(x) is type(y) and x == y


# argument grids per function (arguments as in SSEMNumerics; Fractions where the module uses them)
KS, NS, PS = (2, 3, 10), (2, 5, 50), (1, 2, 3)
TAUS = (1e-3, 0.05, 0.1, 1.0, 20.0)
ALPHAS = (0.0, 0.1, 0.35, 0.9, 1.0)
US = (0.0, 1e-300, 1e-6, 0.3, 1.0)
W_GRID = np.linspace(0.0, 1.0, 11)


def _grid(name: str):
    if name == "L_w":  # vectorised over w (numpy)
        return [(W_GRID, a, t, K, n, p) for a, t, K, n, p in itertools.product(ALPHAS, TAUS, KS, NS, PS)]
    if name == "dL_w":
        return list(itertools.product((0.0, 0.25, 1.0), ALPHAS, TAUS, KS, NS, PS))
    if name in ("alpha_star_u", "alpha_split_u"):
        return list(itertools.product(US, KS, NS, PS))
    if name == "alpha_star_limit":
        return [*itertools.product(KS, NS, PS), *((Fraction(2), Fraction(n), Fraction(p)) for n in NS for p in PS)]
    if name == "tau_max_x":
        vs = (Fraction(1, 10), Fraction(1, 2), 1 - Fraction(0.35), 0.3, 0.75)
        return list(itertools.product(vs, KS, NS, PS))
    if name == "W_small_tau":
        return list(itertools.product(ALPHAS, TAUS, NS, PS))
    if name == "w_etf":
        return list(itertools.product(KS, NS))
    if name == "alpha_eff":
        return list(itertools.product(NS, PS))
    if name == "cbar":
        return list(itertools.product((-0.5, 0.2, 1.0), (-0.1, 0.4, 1.0), KS, NS, (2, 3)))
    if name in ("G", "dG_a", "dG_b"):
        return list(itertools.product((-0.5, 1.0), (-0.1, 1.0), (1.0,), (0.0, 0.4, 1.0), (0.01, 1.0), KS, NS, (2, 3)))
    raise AssertionError(name)


# ----------------------------------------------------------------------------------------------
# (a) cached == freshly derived
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("group", GROUPS)
def test_cached_functions_equal_fresh_lambdify(cache_dir, group) -> None:
    fresh = ssem._lambdify_group(group)  # sympy.lambdify, no cache involved
    ssem._numeric(group)  # derives and writes the file
    assert (cache_dir / f"ssem-numerics-{group}.json").is_file()
    _clear()
    cached = ssem._numeric(group)  # now read back from the file
    assert set(cached) == set(fresh) == set(ssem._GROUPS[group])
    for name, func in cached.items():
        assert _is_cached(func) and not _is_cached(fresh[name])
        for args in _grid(name):
            with np.errstate(all="ignore"):  # e.g. log(0) = -inf for p = 1: the same on both paths
                a, b = _outcome(func, args), _outcome(fresh[name], args)
            # the same source compiled against the same math/numpy objects: bit-identical results
            assert _same(a, b), (group, name, args, a, b)


def test_public_api_identical_with_and_without_cache(cache_dir, monkeypatch) -> None:
    def answers() -> list:
        out = []
        for v, (K, n, p), tau, alpha in itertools.product(("code", "self-excluded"), ((2, 3, 2), (10, 50, 3)),
                                                          (0.05, 0.5, 5.0), (0.02, 0.3, 1.0)):
            res = ssem.beta_star(alpha, tau, K, n, p, v)
            out += [float(ssem.alpha_star(K, n, tau, v, p)), float(ssem.tau_max(alpha, K, n, v, p)), res.beta_star,
                    res.W_star, res.L_star, res.regime, float(ssem.W_small_tau(alpha, tau, n, v, p))]
            out += list(np.asarray(ssem.loss_ssem(W_GRID, alpha, tau, K, n, p, v)))
        return out + [float(ssem.alpha_split(3, 4, 2, 0.5)), float(ssem.alpha_eff_supcon(4, 2))]

    first = answers()  # derived, files written
    _clear()
    from_cache = answers()
    assert all(_is_cached(f) for g in GROUPS for f in ssem._numeric(g).values())
    _clear()
    monkeypatch.setenv("COLLAPSEKIT_NO_CACHE", "1")
    assert ssem._cache_path("code") is None
    uncached = answers()
    assert not any(_is_cached(f) for f in ssem._numeric("code").values())
    # exact equality (no tolerance: the same code); repr is exact for floats and makes nan == nan
    assert list(map(repr, from_cache)) == list(map(repr, first)) == list(map(repr, uncached))


# ----------------------------------------------------------------------------------------------
# (b) a second process answers without sympy
# ----------------------------------------------------------------------------------------------
_ANSWER = (
    "import json, sys\n"
    "from theory import ssem\n"
    "assert 'sympy' not in sys.modules\n"
    "a = ssem.alpha_star(10, 50, 0.1)\n"
    "b = ssem.beta_star(0.2, 0.1, 10, 50)\n"
    "c = ssem.beta_star(0.05, 0.1, 3, 4, 2, 'self-excluded')\n"
    "print(json.dumps({'alpha_star': a, 'beta_star': b.beta_star, 'se': [c.W_star, c.regime, c.alpha_split],\n"
    "                  'sympy': sorted(m for m in sys.modules if m == 'sympy' or m.startswith('sympy.'))}))\n"
)


def _run(code: str, cache: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLLAPSEKIT_NO_CACHE", "PYTHONSTARTUP")}
    env.update(COLLAPSEKIT_CACHE=str(cache), **extra)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_answers_without_sympy(tmp_path) -> None:
    cache = tmp_path / "cache"
    first = _run(_ANSWER, cache)
    assert first["sympy"]  # the first process derived (and imported sympy)
    assert {p.name for p in cache.iterdir()} >= {"ssem-numerics-code.json", "ssem-numerics-self-excluded.json",
                                                 "ssem-numerics-r10.json"}
    second = _run(_ANSWER, cache)
    assert second["sympy"] == []
    assert second == {**first, "sympy": []}  # same answers, to the last bit
    # R5 closed form; u = e^{-100/9} makes every term O(1): float64 rounding of a few operations
    assert second["alpha_star"] == pytest.approx(_alpha_star_code(10, 50, 0.1), rel=1e-14)
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # atomic writes leave no temp files


def test_cli_guideline_from_cache_without_sympy(tmp_path) -> None:
    """The issue's command, through main(), in a process that finds the cache filled."""
    code = (
        "import contextlib, io, json, sys\n"
        "from paper_checks.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = main(['theory', 'ssem', '--classes', '10', '--per-class', '50', '--tau', '0.1', '--alpha', '0.2',"
        " '--json'])\n"
        "print(json.dumps({'rc': rc, 'out': json.loads(buf.getvalue()), 'sympy': 'sympy' in sys.modules}))\n"
    )
    cache = tmp_path / "cache"
    first = _run(code, cache)
    second = _run(code, cache)
    assert first["rc"] == second["rc"] == 0 and first["sympy"] and not second["sympy"]
    assert second["out"] == first["out"]
    assert second["out"]["alpha_star"] == pytest.approx(_alpha_star_code(10, 50, 0.1), rel=1e-14)  # as above
    assert second["out"]["collapse"] is False  # alpha = 0.2 > alpha* ~ 0.0201 (R5)


def test_no_cache_env_writes_nothing(tmp_path) -> None:
    cache = tmp_path / "cache"
    out = _run(_ANSWER, cache, COLLAPSEKIT_NO_CACHE="1")
    assert out["sympy"] and not (cache.exists() and any(cache.iterdir()))


def test_import_and_version_probe_do_not_import_sympy(tmp_path) -> None:
    code = (
        "import json, sys\n"
        "from theory import ssem\n"
        "v = ssem._sympy_version(); k = ssem._cache_key()\n"
        "print(json.dumps({'v': v, 'k': k, 'sympy': 'sympy' in sys.modules,\n"
        "                  'optimize': 'scipy.optimize' in sys.modules}))\n"
    )
    out = _run(code, tmp_path / "cache")
    from importlib.metadata import version

    assert out == {"v": version("sympy"), "k": ssem._cache_key(), "sympy": False, "optimize": False}


# ----------------------------------------------------------------------------------------------
# (c) corrupted, tampered and stale files are ignored and regenerated
# ----------------------------------------------------------------------------------------------
def _valid_file(cache_dir: Path) -> tuple[Path, dict]:
    ssem._numeric("code")
    _clear()
    path = cache_dir / "ssem-numerics-code.json"
    return path, json.loads(path.read_text())


def _assert_regenerated(path: Path) -> None:
    """alpha* is right (R5 closed form) and the file is valid again, with the current key."""
    _clear()
    a = ssem.alpha_star(3, 4, 0.5)
    assert float(a) == pytest.approx(_alpha_star_code(3, 4, 0.5), rel=1e-14)  # a few roundings
    func = ssem._numeric("code")["alpha_star_u"]
    assert not _is_cached(func)  # it was derived again, not read from the bad file
    data = json.loads(path.read_text())
    assert data["key"] == ssem._cache_key() and data["checksum"] == ssem._checksum(data["functions"])
    assert "0.25" not in data["functions"]["alpha_star_u"]["source"]
    _clear()
    assert _is_cached(ssem._numeric("code")["alpha_star_u"])  # and the new file is used


def _tamper(data: dict, source: str | None = None, namespace: dict | None = None, rehash: bool = True) -> str:
    entry = data["functions"]["alpha_star_u"]
    if source is not None:
        entry["source"] = source
    if namespace is not None:
        entry["namespace"] = namespace
    if rehash:
        data["checksum"] = ssem._checksum(data["functions"])
    return json.dumps(data)


WRONG = "def f(u, K, n, p):\n    return 0.25\n"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "checksum", "stale-key", "other-format",
                                    "missing-function", "code-injection", "foreign-module", "attribute"])
def test_bad_cache_file_is_ignored_and_regenerated(cache_dir, damage) -> None:
    path, data = _valid_file(cache_dir)
    text = path.read_text()
    if damage == "garbage":
        bad = "{not json"
    elif damage == "truncated":
        bad = text[: len(text) // 2]
    elif damage == "empty":
        bad = ""
    elif damage == "checksum":  # content edited, checksum left alone
        bad = _tamper(data, WRONG, rehash=False)
    elif damage == "stale-key":  # written by another version of theory/ssem.py or of sympy
        data["key"] = "0" * 64
        bad = _tamper(data, WRONG)
    elif damage == "other-format":
        data["format"] = 0
        bad = _tamper(data, WRONG)
    elif damage == "missing-function":
        del data["functions"]["dL_w"]
        bad = _tamper(data, WRONG)
    elif damage == "code-injection":  # a valid checksum does not make arbitrary code acceptable
        bad = _tamper(data, "def f(u, K, n, p):\n    return __import__('os').getpid() * 0 + 0.25\n")
    elif damage == "foreign-module":
        bad = _tamper(data, "def f(u, K, n, p):\n    return system('true') * 0 + 0.25\n", {"system": ["os", "system"]})
    else:  # attribute access outside the recorded modules
        bad = _tamper(data, "def f(u, K, n, p):\n    return u.real * 0 + 0.25\n")
    path.write_text(bad)
    _assert_regenerated(path)


def test_changed_module_source_makes_the_file_stale(cache_dir, monkeypatch) -> None:
    path, _ = _valid_file(cache_dir)
    old_key = ssem._cache_key()
    monkeypatch.setattr(ssem, "_cache_key", lambda: "f" * 64)  # as if theory/ssem.py had been edited
    assert ssem._cache_load(path, "code") is None
    _clear()
    ssem.alpha_star(3, 4, 0.5)
    assert json.loads(path.read_text())["key"] == "f" * 64 != old_key


def test_key_depends_on_sympy_version(monkeypatch) -> None:
    key = ssem._cache_key()
    monkeypatch.setattr(ssem, "_sympy_version", lambda: "0.0.0")
    assert key is not None and ssem._cache_key.__wrapped__() != key


def test_unwritable_cache_dir_falls_back_to_private_temp(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(blocker / "cache"))  # cannot be created
    monkeypatch.delenv("COLLAPSEKIT_NO_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    got = ssem._cache_dir()
    assert got is not None and got.parent == tmp_path / "tmp" and got.name.startswith("collapsekit-")
    if hasattr(os, "getuid"):
        assert (got.stat().st_mode & 0o777) == 0o700
