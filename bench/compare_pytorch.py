#!/usr/bin/python3
"""flowgrad against PyTorch on the benchmark protocol (design.md §5), one right after the other.

    /usr/bin/python3 bench/compare_pytorch.py build/bench/bench_flows [--threads 1,2] [--repeats 5]

It runs flowgrad's Google Benchmark (bench/bench_flows.cpp: medians of --repeats repetitions, all
configurations and thread counts in one run, interleaved at random, with the measured FMA peak),
then the same models and steps in PyTorch (Debian's python3-torch, models from
bench/reference_pytorch.py, warmed up, median of --repeats timed runs) with the same numbers of
threads, and prints: configuration, flowgrad ms, PyTorch ms, the ratio PyTorch / flowgrad (how
many times faster flowgrad is), GFLOP/s and its share of one core's peak; with several thread
counts, also each configuration's speed-up over one thread. Run by hand, not in CI.

Debian's torch runs its GEMMs in OpenBLAS, which ignores torch.set_num_threads: the PyTorch side
runs in a child process with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS pinned before torch loads.
With more than one thread, torch's OpenMP pool and OpenBLAS's pool spin on the same cores (on a
2-core machine the pinned 2-thread step measured 2-2.7x slower than 1 thread), so PyTorch runs
under each of TORCH_SETTINGS and every row takes its fastest; the table names the winner.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def configurations():
    out = []
    for h in (64, 256):
        for b in (256, 1024, 4096):
            out.append(("BM_RealNVPTrainStep", f"H:{h}/B:{b}", {"kind": "train", "hidden": h, "batch": b}))
    for h in (64, 256):
        out.append(("BM_RealNVPLogProb", f"H:{h}/B:4096", {"kind": "log_prob", "hidden": h, "batch": 4096}))
        out.append(("BM_RealNVPSample", f"H:{h}/B:4096", {"kind": "sample", "hidden": h, "batch": 4096}))
    out.append(("BM_PlanarVIStep", "K:32/B:512", {"kind": "planar_vi", "layers": 32, "batch": 512}))
    return out


def bench_name(base, cfg, threads):
    return f"{base}/{cfg}" + ("" if threads == 1 else f"/threads:{threads}")


# ---------------------------------------------------------------------------------------------
# PyTorch side (a child process, so that the thread environment is set before torch loads).
# ---------------------------------------------------------------------------------------------
def torch_worker(threads, repeats, configs):
    import torch
    sys.path.insert(0, HERE)
    import reference_pytorch as ref

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    results = {}
    for key, spec in configs:
        kind = spec["kind"]
        if kind == "planar_vi":
            model = ref.PlanarFlow(spec["layers"])
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step():
                x, log_q = model(torch.randn(spec["batch"], 2))
                loss = (log_q + ref.energy("U1", x)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        else:
            model = ref.RealNVP(spec["hidden"])
            x = torch.randn(spec["batch"], 2)
            if kind == "train":
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                model.train()

                def step():
                    loss = -model.log_prob(x).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            else:
                with torch.no_grad():
                    model.train()
                    model(x)  # batch-norm statistics from one pass, as flowgrad's benchmark sets them
                model.eval()

                def step():
                    with torch.no_grad():
                        if kind == "log_prob":
                            model.log_prob(x)
                        else:
                            model.inverse(torch.randn(spec["batch"], 2))
        # Warm up, then size each timed run to about 0.3 s.
        t0 = time.perf_counter()
        for _ in range(3):
            step()
        per = (time.perf_counter() - t0) / 3
        n = max(1, int(0.3 / max(per, 1e-6)))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            times.append((time.perf_counter() - t0) / n * 1000)
        results[key] = statistics.median(times)
    json.dump(results, sys.stdout)


# Thread settings for PyTorch at n > 1 threads: (label, torch's OpenMP threads, OpenBLAS threads,
# extra environment). The first is the plain pinning; the others keep the two pools from spinning
# against each other.
def torch_settings(n):
    if n == 1:
        return [("omp1 blas1", 1, 1, {})]
    return [(f"omp{n} blas{n}", n, n, {}),
            (f"omp{n} blas{n} passive", n, n, {"OMP_WAIT_POLICY": "PASSIVE"}),
            (f"omp1 blas{n}", 1, n, {})]


def run_torch(threads, repeats, configs):
    """{benchmark: (ms, setting)}: each configuration's fastest over torch_settings(threads)."""
    best = {}
    for label, omp, blas, extra in torch_settings(threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(omp), OPENBLAS_NUM_THREADS=str(blas), **extra)
        payload = json.dumps(configs)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", "--threads", str(omp),
                              "--repeats", str(repeats), "--configs", payload],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"compare_pytorch: the PyTorch side failed ({label}); its error output:\n{out.stderr}"
                     "(PyTorch comes from Debian: bash scripts/setup.sh --torch, and run with /usr/bin/python3)")
        for name, ms in json.loads(out.stdout).items():
            if name not in best or ms < best[name][0]:
                best[name] = (ms, label)
    return best


# ---------------------------------------------------------------------------------------------
# flowgrad side.
# ---------------------------------------------------------------------------------------------
def run_ours(binary, names, repeats):
    pattern = "^(" + "|".join(re.escape(n) for n in names) + ")$"
    # Repetitions of all the configurations in random order: a slow phase of a shared machine then
    # lands on every configuration and thread count alike instead of on one of them.
    out = subprocess.run([binary, f"--benchmark_filter={pattern}", f"--benchmark_repetitions={repeats}",
                          "--benchmark_enable_random_interleaving=true",
                          "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
                         check=True, capture_output=True, text=True)
    data = json.loads(out.stdout)
    results = {}
    # With one repetition Google Benchmark reports the run itself, with no aggregates.
    wanted = "median" if repeats > 1 else None
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != wanted:
            continue
        name = b["run_name"]
        scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        results[name] = {"ms": b["real_time"] * scale, "gflops": b.get("GFLOP/s"),
                         "samples_per_s": b.get("samples/s", 0)}
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", help="build/bench/bench_flows")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--filter", default="", help="only configurations whose name contains this")
    ap.add_argument("--json", help="also write the table as JSON")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--configs", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.torch_worker:
        torch_worker(int(args.threads), args.repeats, json.loads(args.configs))
        return
    if not args.binary:
        ap.error("the path of bench_flows is required")
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"compare_pytorch: {args.binary} is not an executable (build it: bash scripts/setup.sh)")
    # Before the long flowgrad run: is there a PyTorch to compare with?
    if subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode != 0:
        sys.exit(f"compare_pytorch: {sys.executable} cannot import torch (PyTorch comes from Debian: "
                 "bash scripts/setup.sh --torch, and run with /usr/bin/python3)")

    rows = []
    thread_counts = [int(t) for t in args.threads.split(",")]
    per_threads = {threads: [(bench_name(base, cfg, threads), base, cfg, spec)
                             for base, cfg, spec in configurations() if args.filter in f"{base}/{cfg}"]
                   for threads in thread_counts}
    # flowgrad: every configuration at every thread count, and the FMA peak, in one interleaved run.
    ours = run_ours(args.binary, [c[0] for cs in per_threads.values() for c in cs] + ["BM_FmaPeak"],
                    args.repeats)
    peak = ours.get("BM_FmaPeak", {}).get("gflops")
    for threads in thread_counts:
        cfgs = per_threads[threads]
        torch_ms = run_torch(threads, args.repeats, [[c[0], c[3]] for c in cfgs])
        for name, base, cfg, spec in cfgs:
            o = ours.get(name)
            t, setting = torch_ms.get(name, (None, None))
            rows.append({"benchmark": name, "threads": threads, "flowgrad_ms": o["ms"] if o else None,
                         "pytorch_ms": t, "pytorch_setting": setting,
                         "ratio": (t / o["ms"]) if (o and t) else None,
                         "flowgrad_gflops": o["gflops"] if o else None})

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{datetime.date.today()}, {cpu}, {os.cpu_count()} cores; medians of {args.repeats}")
    print(f"command: {' '.join(sys.argv)}")
    print()
    f = lambda v, fmt: (fmt.format(v) if v is not None else "-")
    if peak:
        print(f"measured float32 FMA peak of one core (BM_FmaPeak): {peak:.1f} GFLOP/s")
        print()
    print("| configuration | threads | flowgrad ms | PyTorch ms | PyTorch / flowgrad | flowgrad GFLOP/s | "
          "% of one core's peak | PyTorch threads |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        share = 100 * r["flowgrad_gflops"] / peak if (peak and r["flowgrad_gflops"]) else None
        r["percent_of_peak"] = share
        print(f"| {r['benchmark']} | {r['threads']} | {f(r['flowgrad_ms'], '{:.2f}')} | {f(r['pytorch_ms'], '{:.2f}')} | "
              f"{f(r['ratio'], '{:.2f}x')} | {f(r['flowgrad_gflops'], '{:.1f}')} | {f(share, '{:.0f}%')} | "
              f"{r['pytorch_setting'] or '-'} |")
    # Scaling: every configuration run at 1 and at more threads.
    one = {r["benchmark"]: r["flowgrad_ms"] for r in rows if r["threads"] == 1}
    more = [r for r in rows if r["threads"] > 1]
    if one and more:
        print()
        print("| configuration | threads | flowgrad ms | 1-thread ms | speed-up |")
        print("|---|---:|---:|---:|---:|")
        for r in more:
            base = one.get(r["benchmark"].rsplit("/threads:", 1)[0])
            up = base / r["flowgrad_ms"] if (base and r["flowgrad_ms"]) else None
            r["speedup_vs_1_thread"] = up
            print(f"| {r['benchmark']} | {r['threads']} | {f(r['flowgrad_ms'], '{:.2f}')} | {f(base, '{:.2f}')} | "
                  f"{f(up, '{:.2f}x')} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"fma_peak_gflops": peak, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
