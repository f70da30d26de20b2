"""Benchmark: loss + gradient of the torch path, dense vs blockwise, against one matrix product.

For each N (points in R^d) and loss, in ONE process and run:

- ``gemm``: one product Z Z^T of the same size (N x d times d x N, the O(N^2 d) physical floor
  of an exact evaluation, anchors.md §12), when its N x N output fits (``--gemm-max-n``);
- ``gemm_panels``: the same flops as row panels of ``--block`` rows (O(N * block) memory);
- ``blockwise``: value + gradient, streamed (:mod:`solvers.torch_path.evaluate`);
- ``dense``: value + gradient with the whole S and autograd, the template matrices materialised
  once beforehand (up to ``--dense-max-n``; an out-of-memory error is recorded, not raised).

Times are medians over ``--repeats`` runs after one warm-up; ratios are time / gemm time of the
same N in the same run (``ratio_gemm``; ``ratio_panels`` against the panel product).  Peak
memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the memory held before the call; on the
CPU the peak resident set size (VmHWM, reset through /proc/self/clear_refs) minus the RSS before
the call, measured in a second pass after glibc is told (mallopt) to serve every block above
128 KiB by mmap, so that freed tensors leave the RSS; the timings come from the first pass with
the default allocator.  Benchmarks are never part of the test suite.

    python benchmarks/torch_blockwise.py --device cpu --n 1024 4096 16384 --threads 1
    python benchmarks/torch_blockwise.py --device cuda --n 4096 16384 65536 --dtype float32 --block 2048
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solvers.layout import Layout  # noqa: E402
from solvers.loss_registry import LossOptions  # noqa: E402
from solvers.torch_path import TorchLoss, structured_torch_loss  # noqa: E402
from solvers.torch_path.spec import materialize  # noqa: E402

LOSSES = ("simclr", "supcon", "riesz", "gaussian", "uniformity", "kcl")


def layout_for(name: str, n: int) -> Layout:
    if name in ("simclr", "kcl", "dcl"):
        return Layout.instances(n // 2, 2)
    if name == "supcon":
        return Layout.balanced(max(n // 64, 1), 32, 2)  # 32 instances x 2 views per class
    return Layout.instances(n, 1)


def _rss_kb(field: str) -> int:
    m = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak extra memory (MiB) during a block of code."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            _malloc_trim()  # free heap pages leave the RSS, so reusing them counts again
            try:
                Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            except OSError:
                pass
            self.base = _rss_kb("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        else:
            self.mib = (_rss_kb("VmHWM") - self.base) / 1024


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds over ``repeats`` runs after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak(fn, device: torch.device) -> float:
    """Peak extra MiB of one call."""
    with PeakMemory(device) as mem:
        fn()
    return mem.mib


def use_mmap_for_large_blocks() -> bool:
    """glibc: serve every block above 128 KiB by mmap (returned on free), so the RSS peak sees
    each tensor; without it freed heap memory is reused and the peak is missed.  Timings are
    taken before this switch (page faults of fresh mappings would slow them)."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, 131072))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def oom_safe(fn):
    try:
        return fn()
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
        if "out of memory" not in str(exc).lower() and not isinstance(exc, MemoryError):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return None


def cases(args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    """For each N: (n, z, {"gemm": fn, "gemm_panels": fn}, [(loss, path, fn)]), built lazily."""
    for n in args.n:
        gen = torch.Generator(device="cpu").manual_seed(n)
        x = torch.randn(n, args.d, generator=gen, dtype=dtype).to(device)
        z = x / x.norm(dim=1, keepdim=True)
        base = {}
        if n <= args.gemm_max_n:
            base["gemm"] = lambda z=z: z @ z.T

        def panels(z: torch.Tensor = z, n: int = n) -> None:
            for r0 in range(0, n, args.block):
                _ = z[r0:r0 + args.block] @ z.T

        base["gemm_panels"] = panels
        work = []
        for name in args.losses:
            lay = layout_for(name, n)
            if lay.n_rows != n:
                continue
            tl = structured_torch_loss(name, lay, args.d, LossOptions(tau=0.5, t=2.0, s=1.0), device=device,
                                       dtype=dtype)
            for path in args.paths:
                if path == "dense" and n > args.dense_max_n:
                    continue
                loss = tl
                if path == "dense":
                    loss = oom_safe(lambda tl=tl: TorchLoss(materialize(tl.spec), device, dtype))
                if loss is None:
                    work.append((name, path, None))
                    continue

                def step(loss=loss, mode=path, x=x) -> float:
                    return loss.value_and_grad(x, mode=mode, block=args.block)[0]

                work.append((name, path, step))
        yield n, base, work


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch reports no CUDA device")
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: dict[tuple, dict] = {}
    base_rows: dict[tuple, dict] = {}
    for n, base, work in cases(args, device, dtype):  # phase 1: time
        b = {"n": n, "d": args.d, "dtype": args.dtype, "device": str(device), "block": args.block}
        for key, fn in base.items():
            t = oom_safe(lambda fn=fn: timed(fn, device, args.repeats))
            b[f"{key}_s"] = t
        base_rows[n] = b
        for name, path, step in work:
            row = {**b, "loss": name, "path": path, "status": "oom"}
            if step is not None:
                t = oom_safe(lambda step=step: timed(step, device, args.repeats))
                if t is not None:
                    row.update(status="ok", seconds=t, value=step(),
                               ratio_gemm=None if b.get("gemm_s") is None else t / b["gemm_s"],
                               ratio_panels=t / b["gemm_panels_s"])
            rows[(n, name, path)] = row
            del step
        del base, work
    method = "cuda.max_memory_allocated" if device.type == "cuda" else "VmHWM - VmRSS"
    if device.type == "cpu":
        method += " (mmap threshold 128 KiB)" if use_mmap_for_large_blocks() else " (glibc default: may miss reuse)"
    for n, base, work in cases(args, device, dtype):  # phase 2: peak memory
        if "gemm" in base:
            base_rows[n]["gemm_mib"] = oom_safe(lambda fn=base["gemm"]: peak(fn, device))
        for name, path, step in work:
            row = rows[(n, name, path)]
            if step is not None and row["status"] == "ok":
                row["peak_mib"] = oom_safe(lambda step=step: peak(step, device))
            print(_line(row), flush=True)
        del base, work
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "memory": method,
            "machine": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "baselines": list(base_rows.values()), "rows": list(rows.values())}


def _line(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['loss']:11s} {r['path']:9s} N={r['n']:6d} d={r['d']} {r['dtype']}  {r['status']}"
    gemm = "    -   " if r["ratio_gemm"] is None else f"{r['ratio_gemm']:8.2f}"
    mib = r.get("peak_mib")
    return (f"{r['loss']:11s} {r['path']:9s} N={r['n']:6d} d={r['d']} {r['dtype']} {r['seconds']:9.3f} s  "
            f"x gemm {gemm}  x panels {r['ratio_panels']:7.2f}  peak {'   oom' if mib is None else f'{mib:9.1f}'} MiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--n", type=int, nargs="+", default=[1024, 2048, 4096], help="numbers of points N")
    p.add_argument("--d", type=int, default=128, help="dimension d")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--block", type=int, default=512, help="rows per panel of the blockwise path")
    p.add_argument("--losses", nargs="+", choices=LOSSES, default=["simclr", "supcon", "riesz", "uniformity"])
    p.add_argument("--paths", nargs="+", choices=("dense", "blockwise"), default=["dense", "blockwise"])
    p.add_argument("--dense-max-n", type=int, default=4096, help="largest N for the dense path")
    p.add_argument("--gemm-max-n", type=int, default=16384, help="largest N for the N x N product")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    p.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    result = run(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
