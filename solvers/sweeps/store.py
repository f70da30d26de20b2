"""The result store: one JSON line per finished task, appended atomically.

Format (JSON Lines, readable by ``pandas.read_json(path, lines=True)``): every line is one
record ``{"key", "experiment", "version", "params", "status", "result", "error", "seconds",
"worker", "finished"}``; ``status`` is ``"ok"`` or ``"failed"``; ``params`` includes ``seed``
for seeded experiments; ``key`` is :func:`solvers.sweeps.grid.task_key` of the parameters.
Non-finite floats are written as the JSON extensions ``NaN``/``Infinity`` (Python's ``json`` and
pandas read them).  One file may hold several experiments.

Why one ``os.write`` on an ``O_APPEND`` descriptor (and not one file per record):

- Only the sweep's driver process writes (workers return records to it), so each finished
  batch of records is one system call of complete lines, on a descriptor opened with
  ``O_APPEND``: the kernel positions every write at the current end of file, so the lines of
  two concurrent sweeps never overlap or interleave; each write is followed by ``fsync``, so a
  record that was reported is on disk (an interrupted sweep loses at most the tasks in flight).
  Keep the store on a local disk of the driver's machine: NFS does not guarantee ``O_APPEND``
  atomicity across clients nor ``flock``.
- Per-record files renamed into place are atomic too, but a grid of 10^4 tasks becomes 10^4
  files until a compaction step, and pandas cannot read the store directly.
- The only way to leave a torn line is a crash in the middle of a write (power loss, SIGKILL of
  a writer during a multi-page record, a full disk).  Readers therefore (a) ignore a last line
  without a newline (possibly still being written), (b) recover the record that starts after a
  torn fragment on the same line (every record starts with ``{"key":``), and (c) skip anything
  else that does not parse, counting it in ``ReadReport.skipped``.  A writer that opens a file
  ending without a newline first terminates the torn fragment, so a new record never joins it.
- :func:`compact` rewrites the file without duplicates and torn lines (temporary file, fsync,
  ``os.replace``).  An ``fcntl`` lock file (``PATH.lock``) orders it against appends: appends
  hold a shared lock, compaction an exclusive one, and an appender that finds the file replaced
  reopens it.  Without ``fcntl`` (Windows) appends stay atomic but compaction must not run
  while a sweep writes.

Duplicates (two sweeps of the same grid running at once, both computing a task) are not
corruption: readers keep the first ``ok`` record of each key; tasks are deterministic functions
of their parameters, so the duplicates hold the same result.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

RECORD_START = '{"key":'
FIELDS = ("key", "experiment", "version", "params", "status", "result", "error", "seconds", "worker",
          "finished")


def make_record(key: str, experiment: str, version: str, params: Mapping[str, Any], status: str,
                result: Mapping[str, Any] | None, error: str | None, seconds: float) -> dict[str, Any]:
    """A store record with the fields in the fixed order (``key`` first, see the module docstring)."""
    return {
        "key": key, "experiment": experiment, "version": version, "params": dict(params),
        "status": status, "result": None if result is None else dict(result), "error": error,
        "seconds": seconds, "worker": f"{socket.gethostname()}:{os.getpid()}",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def encode(record: Mapping[str, Any]) -> bytes:
    """One complete line: ``key`` first, no newline inside (JSON escapes them)."""
    if next(iter(record), None) != "key":
        raise ValueError("record must start with its 'key' field")
    return (json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n").encode("utf-8")


@dataclass
class ReadReport:
    """Records read from a store and what was skipped (torn or invalid lines)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    recovered: int = 0
    partial_tail: bool = False


def _parse_line(line: str, report: ReadReport) -> None:
    try:
        rec = json.loads(line)
        if isinstance(rec, dict) and "key" in rec:
            report.records.append(rec)
            return
    except json.JSONDecodeError:
        pass
    cut = line.rfind(RECORD_START)
    if cut > 0:  # a torn fragment followed by a complete record on the same line
        try:
            rec = json.loads(line[cut:])
            if isinstance(rec, dict) and "key" in rec:
                report.records.append(rec)
                report.recovered += 1
                report.skipped += 1  # the fragment before it
                return
        except json.JSONDecodeError:
            pass
    report.skipped += 1


def read_store(path: str | os.PathLike) -> ReadReport:
    """Every complete record of the store (in file order); a missing file reads as empty."""
    report = ReadReport()
    p = Path(path)
    if not p.exists():
        return report
    data = p.read_bytes()
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if tail.strip():
        report.partial_tail = True  # being written, or torn by a crash: not a record yet
    for line in lines:
        if line.strip():
            _parse_line(line, report)
    return report


def latest_by_key(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """key -> the record that counts: the first ``ok`` record, else the last failed one."""
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        key = rec["key"]
        old = out.get(key)
        if old is None or (old.get("status") != "ok"):
            out[key] = dict(rec)
    return out


def done_keys(path: str | os.PathLike) -> set[str]:
    """Keys with an ``ok`` record (the tasks a resumed sweep reuses)."""
    return {r["key"] for r in read_store(path).records if r.get("status") == "ok"}


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextmanager
def _locked(lock_fd: int | None, exclusive: bool) -> Iterator[None]:
    if fcntl is None or lock_fd is None:
        yield
        return
    fcntl.flock(lock_fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class StoreWriter:
    """Append records to a store: one ``os.write`` of one line per record, then ``fsync``.

    Use as a context manager (``with StoreWriter(path) as w: w.append(record)``).
    """

    def __init__(self, path: str | os.PathLike, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._ino: int | None = None

    def __enter__(self) -> StoreWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is not None:
            self._lock_fd = os.open(_lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        with _locked(self._lock_fd, exclusive=True):
            self._reopen()
            self._terminate_torn_tail()

    def _reopen(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._ino = os.fstat(self._fd).st_ino
        if created:
            _fsync_dir(self.path)

    def _terminate_torn_tail(self) -> None:
        size = os.fstat(self._fd).st_size  # type: ignore[arg-type]
        if size == 0:
            return
        with open(self.path, "rb") as fh:
            fh.seek(size - 1)
            last = fh.read(1)
        if last != b"\n":
            self._write_all(b"\n")

    def _write_all(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a signal mid-write: finish the line
            written += os.write(fd, data[written:])
        if self.fsync:
            os.fsync(fd)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record atomically (see the module docstring)."""
        self.append_many([record])

    def append_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write several complete lines with one ``os.write`` (contiguous in the file), one fsync."""
        if self._fd is None:
            raise ValueError("store writer is closed; use it inside 'with StoreWriter(path)'")
        data = b"".join(encode(r) for r in records)
        if not data:
            return
        with _locked(self._lock_fd, exclusive=False):
            try:
                same = os.stat(self.path).st_ino == self._ino
            except FileNotFoundError:
                same = False
            if not same:  # compacted (replaced) or removed since we opened it
                self._reopen()
            self._write_all(data)

    def close(self) -> None:
        for attr in ("_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)


def compact(path: str | os.PathLike) -> dict[str, int]:
    """Rewrite the store with one record per key (first ``ok``, else last failed), no torn lines.

    Atomic: a temporary file in the same folder, fsync, ``os.replace``; ordered against
    concurrent appends by the lock file.  Returns the counts before and after.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"store {str(p)!r} does not exist")
    lock_fd = os.open(_lock_path(p), os.O_RDWR | os.O_CREAT, 0o644) if fcntl is not None else None
    try:
        with _locked(lock_fd, exclusive=True):
            report = read_store(p)
            keep = latest_by_key(report.records)
            tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"".join(encode(_ordered(r)) for r in keep.values()))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, p)
            _fsync_dir(p)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    return {"records_before": len(report.records), "records_after": len(keep),
            "skipped_lines": report.skipped, "partial_tail": int(report.partial_tail)}


def _ordered(rec: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: rec[k] for k in FIELDS if k in rec}
    out.update({k: v for k, v in rec.items() if k not in out})
    return out


# ----------------------------------------------------------------------------------------------
# reading for figures
# ----------------------------------------------------------------------------------------------
def _matches(params: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    for name, want in filters.items():
        if name not in params:
            return False
        have = params[name]
        if isinstance(want, (list, tuple, set, frozenset)):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def load_results(store: str | os.PathLike, name: str, *, status: str | None = "ok",
                 version: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """Records of experiment ``name`` whose parameters match ``filters``, one per task key.

    A filter value that is a list/tuple/set matches any of its values (``tau=[0.1, 0.5]``);
    otherwise equality (``K=4``; seeds filter as ``seed=0``).  ``status=None`` returns failed
    records too.  Each record is a plain dict (no pandas needed); ``record["params"]`` and
    ``record["result"]`` hold the inputs and outputs, :func:`flatten` merges them.
    """
    recs = [r for r in read_store(store).records if r.get("experiment") == name
            and (version is None or r.get("version") == version)]
    out = []
    for rec in latest_by_key(recs).values():
        if status is not None and rec.get("status") != status:
            continue
        if _matches(rec.get("params") or {}, filters):
            out.append(rec)
    return out


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row: the parameters, then the result fields (``result.NAME`` where a result field
    repeats a parameter name with another value), then ``status``, ``error``, ``seconds``, ``key``."""
    params = dict(record.get("params") or {})
    row = dict(params)
    for k, v in (record.get("result") or {}).items():
        if k in params and params[k] != v:
            row[f"result.{k}"] = v
        elif k not in params:
            row[k] = v
    for k in ("status", "error", "seconds", "key"):
        row[k] = record.get(k)
    return row


def results_frame(store: str | os.PathLike, name: str, **filters: Any):
    """:func:`load_results` as a pandas DataFrame of :func:`flatten` rows (needs pandas)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("results_frame needs pandas (pip install pandas); load_results returns "
                          "plain dicts without it") from None
    return pd.DataFrame([flatten(r) for r in load_results(store, name, **filters)])
