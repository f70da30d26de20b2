"""The sweep engine: grids, the JSON-lines store, resume after SIGTERM, Dask = process pool.

Expected values come from the definitions (task key = sha256 of canonical JSON, grid.py), closed
forms (frame potential of uniform points; SSEM thresholds of ssem.md R5/R6 and their worked
examples) or from an uninterrupted run of the same tasks (resume must reproduce it exactly).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from paper_checks.cli import main
from solvers.sweeps import (
    Int,
    compact,
    experiment,
    get_experiment,
    load_results,
    parse_grid,
    parse_seeds,
    plan,
    read_store,
    run_sweep,
    task_key,
)
from solvers.sweeps.store import StoreWriter, make_record

# 30 tasks of ~0.05 s each: long enough to be interrupted midway, short enough for CI
KILL_GRID = {"loss": ["simclr"], "n": [16], "dim": [8], "samples": [150]}
KILL_SEEDS = list(range(30))
KILL_ARGV = ["loss-eval", "--grid", "loss=simclr", "n=16", "dim=8", "samples=150", "--seeds", "30"]
# ``collapsekit sweep`` without the other subcommands' imports (cvxpy, torch): same code path
DRIVER = (
    "import argparse, sys\n"
    "from paper_checks.commands import sweep\n"
    "p = argparse.ArgumentParser(); sweep.register(p.add_subparsers(), {})\n"
    "sys.exit(sweep.run(p.parse_args(['sweep'] + sys.argv[1:])))\n"
)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
@experiment("test-required", params=[Int("x", low=0, help="required"), Int("y", 1, low=1)], seeded=False)
def _required_task(*, x: int, y: int) -> dict:
    return {"x_times_y": x * y}


@experiment("test-flaky", params=[Int("x", 0, low=0)], seeded=False)
def _flaky_task(*, x: int) -> dict:
    if x == 2:
        raise ArithmeticError("x = 2 is refused by the task itself")
    return {"square": x * x}


def _results(path: Path, name: str = "loss-eval") -> dict[str, dict]:
    return {r["key"]: r["result"] for r in load_results(path, name)}


def _line_keys(path: Path) -> list[str]:
    """Keys of every line of the store (no dedupe): 'present exactly once' is checked on these."""
    return [json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip()]


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_for_records(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while _count_lines(path) < n:
        if proc.poll() is not None:
            raise AssertionError(f"sweep ended early: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("sweep produced no records in time")
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    """Pool workers of ``pid`` (Linux /proc): children whose command line is a spawn worker."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc to find the pool's worker processes")
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and "spawn_main" in cmd:
            out.append(int(entry.name))
    return out


def _cli(tmp_path: Path, *args: str) -> subprocess.Popen:
    """``collapsekit sweep ARGS`` in a subprocess (a ``python -c`` driver, see DRIVER)."""
    return subprocess.Popen([sys.executable, "-c", DRIVER, *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict]:
    """An uninterrupted run of the kill grid (in-process threads: no interruption possible)."""
    store = tmp_path_factory.mktemp("ref") / "ref.jsonl"
    summary = run_sweep("loss-eval", KILL_GRID, KILL_SEEDS, store=store, executor=ThreadPoolExecutor(2))
    assert (summary.computed, summary.failed, summary.reused) == (30, 0, 0)
    assert sorted(_line_keys(store)) == sorted(t.key for t in plan(get_experiment("loss-eval"), KILL_GRID,
                                                                   KILL_SEEDS))
    return _results(store)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> dict:
    """``collapsekit sweep`` on a 2-process pool: SIGTERM to a worker (the pool is restarted),
    then SIGTERM to the parent (the sweep stops), then the same sweep with resume."""
    tmp = tmp_path_factory.mktemp("kill")
    store = tmp / "k.jsonl"
    proc = _cli(tmp, *KILL_ARGV, "--workers", "2", "--store", str(store), "--json")
    _wait_for_records(store, 3, proc)
    workers = _children(proc.pid)
    assert workers, "no pool worker found"
    os.kill(workers[0], signal.SIGTERM)
    end = time.monotonic() + 120
    while not set(_children(proc.pid)) - set(workers):  # wait for the replacement pool
        assert time.monotonic() < end and proc.poll() is None, "the pool was not replaced"
        time.sleep(0.01)
    _wait_for_records(store, _count_lines(store) + 1, proc)  # and for it to make progress
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    kept = _line_keys(store)
    skipped = read_store(store).skipped
    time.sleep(0.2)
    orphans = _children(proc.pid)
    resumed = run_sweep("loss-eval", KILL_GRID, KILL_SEEDS, store=store, resume=True, workers=2)
    return {"rc": proc.returncode, "err": err, "payload": json.loads(out), "kept": kept, "skipped": skipped,
            "orphans": orphans, "resumed": resumed, "store": store}


# ----------------------------------------------------------------------------------------------
# grids are checked before any task starts
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grid", "seeds", "named"),
    [
        ({"bogus": [1]}, None, "'bogus'"),  # unknown parameter
        ({"tau": []}, None, "'tau'"),  # empty list
        ({"n": [4, 2.5]}, None, "'n'"),  # wrong type for an int
        ({"n": ["4"]}, None, "'n'"),  # strings are not numbers in the Python API
        ({"tau": [True]}, None, "'tau'"),  # bools are not numbers
        ({"tau": [0.5, -1.0]}, None, "'tau'"),  # out of range
        ({"loss": ["nope"]}, None, "'loss'"),  # not a choice
        ({"loss": ["simclr"], "n": [1]}, None, "'n'"),  # the experiment's own cross-check
        ({}, [0, -1], "seeds"),  # negative seed
        ({"seed": [0]}, None, "'seed'"),  # seeds go through seeds=, not the grid
    ],
)
def test_bad_grid_is_refused_before_any_task(tmp_path, grid, seeds, named):
    store = tmp_path / "s.jsonl"
    with pytest.raises(ValueError, match=named):
        run_sweep("loss-eval", grid, seeds, store=store, workers=1)
    assert not store.exists()  # nothing ran, nothing was written


def test_missing_required_parameter_and_deterministic_seeds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'x' is required"):
        run_sweep("test-required", {"y": [2]}, store=tmp_path / "s.jsonl", executor=ThreadPoolExecutor(1))
    with pytest.raises(ValueError, match="deterministic"):
        run_sweep("test-required", {"x": [1]}, [0, 1], store=tmp_path / "s.jsonl",
                  executor=ThreadPoolExecutor(1))
    with pytest.raises(ValueError, match="experiment must be one of .*loss-eval"):
        run_sweep("no-such-sweep", {}, store=tmp_path / "s.jsonl")


def test_cli_refuses_bad_grid_with_the_parameter_named(tmp_path, capsys):
    for item, named in [("tau=", "'tau'"), ("K=2.5", "'K'"), ("wat=1", "'wat'"), ("variant=x", "'variant'")]:
        code = main(["sweep", "ssem-guideline", "--grid", item, "--store", str(tmp_path / "s.jsonl"), "--json"])
        assert code == 2
        assert named in json.loads(capsys.readouterr().out)["error"]
    assert not (tmp_path / "s.jsonl").exists()


def test_registration_rules():
    def nested(*, a: int) -> dict:
        return {}

    with pytest.raises(ValueError, match="top-level"):
        experiment("test-nested", params=[Int("a", 1)], seeded=False)(nested)
    with pytest.raises(ValueError, match="does not accept"):
        experiment("test-sig", params=[Int("zzz", 1)], seeded=False)(_required_task)
    with pytest.raises(ValueError, match="already registered"):
        experiment("test-required", params=[Int("x", 0)], seeded=False)(_flaky_task)
    with pytest.raises(ValueError, match="must not declare 'seed'"):
        experiment("test-seed", params=[Int("seed", 0)])


def test_grid_syntax_and_task_keys():
    exp = get_experiment("ssem-guideline")
    grid = parse_grid(exp, ["alpha=lin:0:1:5", "K=2..6..2", "tau=log:0.01:1:3,2"])
    assert grid["alpha"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert grid["K"] == [2, 4, 6]
    assert grid["tau"] == [0.01, 0.1, 1.0, 2.0]  # geometric points rounded to 15 digits
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("2:5") == [2, 3, 4] and parse_seeds("7,1") == [7, 1]
    # the key is sha256 of the canonical JSON of {experiment, version, params} (grid.py docstring)
    params = {"alpha": 0.5, "tau": 1.0, "K": 2, "n": 3, "p": 2, "variant": "code"}
    blob = json.dumps({"experiment": "ssem-guideline", "version": "1", "params": params},
                      sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(blob.encode()).hexdigest()[:32]
    tasks = plan(exp, {"alpha": [0.5], "tau": [1], "K": [2], "n": [3.0]})  # ints/floats coerced
    assert [t.key for t in tasks] == [expected] == [task_key("ssem-guideline", "1", params)]
    seeded = plan(get_experiment("loss-eval"), {}, [0, 1.0])
    assert len({t.key for t in seeded}) == 2 and seeded[1].params["seed"] == 1
    with pytest.raises(ValueError, match="distinct"):
        plan(get_experiment("loss-eval"), {}, [0, 1, 1.0])


# ----------------------------------------------------------------------------------------------
# interruption and resume
# ----------------------------------------------------------------------------------------------
def test_sigterm_to_worker_and_parent_then_resume_equals_uninterrupted_run(killed_and_resumed, reference):
    run = killed_and_resumed
    assert run["rc"] == 128 + signal.SIGTERM, run["err"]
    payload = run["payload"]
    assert payload["interrupted"] is True and payload["tasks"] == 30
    assert payload["pool_restarts"] >= 1  # the killed worker's pool was replaced, the sweep went on
    kept = run["kept"]
    assert 4 <= len(kept) < 30 and len(set(kept)) == len(kept)  # stopped midway, no duplicate
    assert payload["computed"] == len(kept)
    assert run["skipped"] == 0  # no torn line
    assert run["orphans"] == []  # the workers went with the parent
    summary = run["resumed"]
    assert (summary.reused, summary.computed, summary.failed) == (len(kept), 30 - len(kept), 0)
    keys = _line_keys(run["store"])
    assert sorted(keys) == sorted(reference) and len(keys) == len(set(keys)) == 30  # each exactly once
    assert _results(run["store"]) == reference  # identical floats, same seeds


def test_resume_without_flag_is_refused_and_failed_tasks_are_retried(tmp_path):
    store = tmp_path / "f.jsonl"
    first = run_sweep("test-flaky", {"x": [0, 1, 2, 3]}, store=store, executor=ThreadPoolExecutor(2))
    assert (first.computed, first.failed) == (3, 1)
    assert "ArithmeticError" in first.failures[0]["error"] and first.failures[0]["params"] == {"x": 2}
    with pytest.raises(ValueError, match="--resume"):
        run_sweep("test-flaky", {"x": [0, 1]}, store=store, executor=ThreadPoolExecutor(1))
    again = run_sweep("test-flaky", {"x": [0, 1, 2, 3]}, store=store, resume=True, executor=ThreadPoolExecutor(1))
    assert (again.reused, again.computed, again.failed) == (3, 0, 1)  # only the failed task ran again
    ok = load_results(store, "test-flaky")
    assert sorted(r["result"]["square"] for r in ok) == [0, 1, 9]
    assert len(load_results(store, "test-flaky", status=None)) == 4


# ----------------------------------------------------------------------------------------------
# Dask
# ----------------------------------------------------------------------------------------------
def test_dask_local_cluster_gives_the_process_pool_results(tmp_path, killed_and_resumed):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is an optional extra "
                                      "(pip install 'collapsekit[dask]')")
    store = tmp_path / "d.jsonl"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        summary = run_sweep("loss-eval", KILL_GRID, KILL_SEEDS, store=store, scheduler=cluster.scheduler_address)
    assert summary.executor.startswith("dask") and summary.workers == 2
    assert (summary.computed, summary.failed) == (30, 0)
    assert _results(store) == _results(killed_and_resumed["store"])  # the process pool's records


def test_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed", reason="dask.distributed is an optional extra")
    from solvers.sweeps.engine import dask_client

    with pytest.raises(ValueError, match="scheduler: cannot connect"):
        dask_client("tcp://127.0.0.1:9", timeout=1)


def test_missing_distributed_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ValueError, match=r"collapsekit\[dask\]"):
        run_sweep("test-required", {"x": [1]}, store=tmp_path / "s.jsonl", scheduler="tcp://127.0.0.1:8786")
    assert not (tmp_path / "s.jsonl").exists()


# ----------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------
_WRITER = """
import sys
from solvers.sweeps.store import StoreWriter, make_record
wid, n = int(sys.argv[1]), int(sys.argv[2])
with StoreWriter(sys.argv[3]) as w:
    for i in range(n):
        pad = "x" * (50 + (i * 997 + wid * 131) % 20000)  # up to 5 pages: multi-page writes
        w.append(make_record(f"{wid}-{i}", "test", "1", {"w": wid, "i": i}, "ok", {"pad": pad}, None, 0.0))
"""

_COMPACTOR = """
import sys, time
from solvers.sweeps.store import compact
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    compact(sys.argv[1])
"""


def test_concurrent_writers_and_compaction_do_not_corrupt(tmp_path):
    store = tmp_path / "c.jsonl"
    store.write_text("")
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(w), "100", str(store)]) for w in range(4)]
    compactor = subprocess.Popen([sys.executable, "-c", _COMPACTOR, str(store), "1"])
    assert all(p.wait(timeout=120) == 0 for p in [*writers, compactor])
    report = read_store(store)
    assert report.skipped == 0 and not report.partial_tail
    keys = [r["key"] for r in report.records]
    assert sorted(keys) == sorted(f"{w}-{i}" for w in range(4) for i in range(100))  # each exactly once
    for r in report.records:
        w, i = r["params"]["w"], r["params"]["i"]
        assert len(r["result"]["pad"]) == 50 + (i * 997 + w * 131) % 20000


def test_two_sweeps_of_the_same_grid_at_once(tmp_path):
    store = tmp_path / "two.jsonl"
    grid = {"loss": ["frame", "riesz"], "n": [4, 6], "samples": [4]}
    out: list = []

    def go():
        out.append(run_sweep("loss-eval", grid, [0, 1], store=store, resume=True, executor=ThreadPoolExecutor(1)))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s.failed == 0 and s.computed + s.reused == 8 for s in out)
    assert read_store(store).skipped == 0
    assert len(load_results(store, "loss-eval")) == 8  # duplicates (if any) collapse to one per key
    before = compact(store)
    assert before["records_after"] == 8 and len(_line_keys(store)) == 8


def test_torn_last_line_is_ignored_then_repaired(tmp_path):
    store = tmp_path / "t.jsonl"
    grid = {"loss": ["frame"], "n": [4], "samples": [2]}
    run_sweep("loss-eval", grid, [0, 1], store=store, executor=ThreadPoolExecutor(1))
    torn = '{"key":"deadbeef","experiment":"loss-eval","params":{"n":'
    with open(store, "a") as fh:
        fh.write(torn)  # a crash in the middle of a write
    report = read_store(store)
    assert len(report.records) == 2 and report.partial_tail
    summary = run_sweep("loss-eval", grid, [0, 1, 2], store=store, resume=True, executor=ThreadPoolExecutor(1))
    assert (summary.reused, summary.computed) == (2, 1)
    report = read_store(store)
    assert len(report.records) == 3 and report.skipped == 1 and not report.partial_tail
    # a torn fragment glued to a complete record on one line: the record is recovered
    rec = make_record("k1", "loss-eval", "1", {"n": 9}, "ok", {"v": 1.0}, None, 0.0)
    with open(store, "a") as fh:
        fh.write(torn + json.dumps(rec, separators=(",", ":")) + "\n")
    assert read_store(store).recovered == 1
    compact(store)
    report = read_store(store)
    assert report.skipped == 0 and len(report.records) == 4


def test_writer_refuses_use_after_close(tmp_path):
    w = StoreWriter(tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="closed"):
        w.append(make_record("k", "e", "1", {}, "ok", {}, None, 0.0))


def test_load_results_filters_and_pandas(tmp_path):
    store = tmp_path / "p.jsonl"
    grid = {"loss": ["frame", "riesz"], "n": [4, 6], "dim": [3], "samples": [3]}
    run_sweep("loss-eval", grid, [0, 1], store=store, executor=ThreadPoolExecutor(2))
    assert len(load_results(store, "loss-eval")) == 8
    assert len(load_results(store, "loss-eval", loss="frame")) == 4
    assert len(load_results(store, "loss-eval", loss="frame", n=[4, 6], seed=1)) == 2
    assert load_results(store, "other") == []
    pd = pytest.importorskip("pandas", reason="pandas is optional (load_results needs none)")
    raw = pd.read_json(store, lines=True)
    assert len(raw) == 8 and {"key", "params", "result", "status"} <= set(raw.columns)
    from solvers.sweeps import results_frame

    frame = results_frame(store, "loss-eval", loss="riesz")
    assert len(frame) == 4 and {"n", "seed", "mean", "sem"} <= set(frame.columns)


# ----------------------------------------------------------------------------------------------
# the experiments against closed forms
# ----------------------------------------------------------------------------------------------
def test_loss_eval_frame_potential_mean_matches_closed_form(tmp_path):
    """E FP = N + N(N-1)/d for iid uniform points (E<x,y>^2 = 1/d, anchors.md §6)."""
    store = tmp_path / "fp.jsonl"
    grid = {"loss": ["frame"], "n": [5, 12], "dim": [3, 8], "samples": [400]}
    run_sweep("loss-eval", grid, [0], store=store, executor=ThreadPoolExecutor(2))
    recs = load_results(store, "loss-eval")
    assert len(recs) == 4
    for r in recs:
        n, d = r["params"]["n"], r["params"]["dim"]
        expected = n + n * (n - 1) / d
        # Monte Carlo: 400 configurations; 5 standard errors (two-sided p ~ 6e-7 per case)
        assert abs(r["result"]["mean"] - expected) <= 5 * r["result"]["sem"], (n, d, r["result"])


def test_ssem_guideline_records_match_the_spec_formulas(tmp_path):
    store = tmp_path / "g.jsonl"
    run_sweep("ssem-guideline", {"alpha": [0.5, 1.0], "tau": [0.1, 1.0], "K": [2, 4], "n": [3, 5]},
              store=store, executor=ThreadPoolExecutor(2))
    recs = load_results(store, "ssem-guideline")
    assert len(recs) == 16
    for r in recs:
        K, n, tau, alpha = (r["params"][k] for k in ("K", "n", "tau", "alpha"))
        u = math.exp(-K / ((K - 1) * tau))
        closed = (1 + (K * n - 1) * u) / (n * (1 + (K - 1) * u))  # ssem.md R5, code variant
        assert r["result"]["alpha_star"] == pytest.approx(closed, rel=1e-12)  # float64 round-off
        if alpha == 1.0:  # ssem.md R4: W* = K(n-1)/(Kn-1) at alpha = 1
            assert r["result"]["W_star"] == pytest.approx(K * (n - 1) / (K * n - 1), abs=1e-12)  # brentq xtol
    example = load_results(store, "ssem-guideline", K=2, n=3, tau=1.0, alpha=0.5)[0]
    assert example["result"]["alpha_star"] == pytest.approx(0.492271, abs=5e-7)  # 6 printed decimals
    example = load_results(store, "ssem-guideline", K=4, n=5, tau=1.0, alpha=0.5)[0]
    # ssem.md R6 worked example: tau_max(0.5) = 0.654595 for (K, n) = (4, 5)
    assert example["result"]["tau_max"] == pytest.approx(0.654595, abs=5e-7)  # 6 printed decimals


def test_cli_json_summary_dry_run_and_list(tmp_path, capsys):
    store = str(tmp_path / "cli.jsonl")
    argv = ["sweep", "loss-eval", "--grid", "loss=frame", "n=4", "samples=2", "--seeds", "2",
            "--workers", "1", "--store", store, "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"tasks", "computed", "reused", "failed", "seconds", "store"} <= set(payload)
    assert (payload["tasks"], payload["computed"], payload["reused"], payload["failed"]) == (2, 2, 0, 0)
    assert main(["sweep", "loss-eval", "--grid", "loss=frame", "n=4,5", "samples=2", "--seeds", "2",
                 "--store", store, "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["tasks"], dry["stored"], dry["to_run"]) == (4, 2, 2)
    assert main(["sweep", "--list", "--json"]) == 0
    names = {e["name"] for e in json.loads(capsys.readouterr().out)["experiments"]}
    assert {"loss-eval", "ssem-guideline", "energy", "solve"} <= names
