#!/usr/bin/python3
"""flowgrad against PyTorch on the benchmark protocol (docs/design.md §5), one after the other.

    /usr/bin/python3 bench/compare_pytorch.py build/bench/bench_flows [--threads 1,2] [--repeats 5]

It measures in --repeats rounds. A round runs flowgrad's Google Benchmark once (bench/bench_flows.cpp:
all configurations and thread counts, in random order, and the measured FMA peak), and the same
models and steps in PyTorch (Debian's python3-torch, models from bench/reference_pytorch.py, warmed
up) with the same numbers of threads; rounds alternate which side goes first. Each side's time is the
median over rounds, and the ratio PyTorch / flowgrad (how many times faster flowgrad is) the median
of the rounds' ratios, with their range: a shared machine's speed drifts by tens of percent within
minutes, and a ratio of two runs a minute apart is only as good as that drift, so each round's two
runs are taken close together and the spread is shown. It prints configuration, flowgrad ms, PyTorch
ms, the ratio and its range, GFLOP/s and its share of one core's peak; with several thread counts,
also each configuration's speed-up over one thread (median and range of the rounds' speed-ups). Run
by hand, not in CI.

The rows: RealNVP (train step, log p, sampling), the planar VI step, and NSF-C and MAF (train step at
d = 2 and 8, batch 1024; MAF sampling and log p at d = 8, N = 1024), reference_pytorch.NSF and .MAF.
--filter (a substring) and --only (a regular expression) pick rows by name, e.g.
--only '^BM_(NSF|MAF)' for the spline and autoregressive flows alone.

Debian's torch runs its GEMMs in OpenBLAS, which ignores torch.set_num_threads: the PyTorch side
runs in a child process with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS pinned before torch loads.
With more than one thread, torch's OpenMP pool and OpenBLAS's pool spin on the same cores (on a
2-core machine the pinned 2-thread step measured 2-2.7x slower than 1 thread), so PyTorch runs
under each of TORCH_SETTINGS and every row takes the one with the fastest median; the table names it.

Three peers, each row's best of them named "the best peer":
  PyTorch        as Debian ships it;
  PyTorch tuned  the same with glibc's allocator kept from handing memory back to the system
                 (GLIBC_TUNABLES below): PyTorch frees and reallocates its large buffers every step,
                 and glibc otherwise unmaps and maps them again each time;
  LibTorch       the same RealNVP in C++ on Debian's libtorch-dev (bench/libtorch/realnvp_peer.cpp,
                 built by bash bench/libtorch/build.sh; --libtorch names it, default: beside
                 bench_flows), with and without the tuned allocator; it has the RealNVP rows only.
Before timing, the script checks that LibTorch's first loss equals PyTorch's (same seed, same model).
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
    # NSF-C (8 spline couplings, K = 8 on [-4, 4], conditioner 64 x 2) and MAF (5 MADE layers of
    # 50 x 2, permutations between them): reference_pytorch.NSF and .MAF.
    for d in (2, 8):
        out.append(("BM_NSFTrainStep", f"D:{d}/B:1024", {"kind": "nsf_train", "dim": d, "batch": 1024}))
    for d in (2, 8):
        out.append(("BM_MAFTrainStep", f"D:{d}/B:1024", {"kind": "maf_train", "dim": d, "batch": 1024}))
    out.append(("BM_MAFSample", "D:8/N:1024", {"kind": "maf_sample", "dim": 8, "batch": 1024}))
    out.append(("BM_MAFLogProb", "D:8/N:1024", {"kind": "maf_log_prob", "dim": 8, "batch": 1024}))
    # train_images' RealNVP at 784 pixels (6 x [permutation, coupling 392 -> 1024 -> 1024 -> 392,
    # ActNorm]): reference_images.realnvp.
    out.append(("BM_ImageFlowTrainStep", "H:1024/B:256", {"kind": "image_train", "hidden": 1024, "batch": 256}))
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
        elif kind == "image_train":
            import numpy as np
            import reference_images as refimg
            model = refimg.realnvp(784, 6, spec["hidden"], 2, 0, np.random.default_rng(0))
            x = torch.randn(spec["batch"], 784)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step():
                loss = -model.log_prob(x).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        elif kind in ("nsf_train", "maf_train", "maf_sample", "maf_log_prob"):
            model = ref.NSF(spec["dim"]) if kind == "nsf_train" else ref.MAF(spec["dim"])
            x = torch.randn(spec["batch"], spec["dim"])
            if kind.endswith("_train"):
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)

                def step():
                    loss = -model.log_prob(x).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            else:
                def step():
                    with torch.no_grad():
                        if kind == "maf_log_prob":
                            model.log_prob(x)
                        else:  # d MADE passes per MAF layer
                            model.inverse(torch.randn(spec["batch"], spec["dim"]))
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


TUNED_ALLOCATOR = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"}


def run_torch(threads, configs, allocator_env=None):
    """{setting: {benchmark: ms}}: one timed run of each configuration under each of
    torch_settings(threads), with allocator_env added to the environment."""
    by_setting = {}
    for label, omp, blas, extra in torch_settings(threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(omp), OPENBLAS_NUM_THREADS=str(blas), **extra,
                   **(allocator_env or {}))
        payload = json.dumps(configs)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", "--threads", str(omp),
                              "--repeats", "1", "--configs", payload],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"compare_pytorch: the PyTorch side failed ({label}); its error output:\n{out.stderr}"
                     "(PyTorch comes from Debian: bash scripts/setup.sh --torch, and run with /usr/bin/python3)")
        by_setting[label] = json.loads(out.stdout)
    return by_setting


def run_libtorch(binary, threads, names):
    """{setting: {benchmark: ms}}: one timed run of each benchmark the LibTorch peer has, under
    each of torch_settings(threads), with glibc's allocator as it is and tuned."""
    by_setting = {}
    for allocator, allocator_env in (("", {}), (" tuned", TUNED_ALLOCATOR)):
        for label, omp, blas, extra in torch_settings(threads):
            env = dict(os.environ, OMP_NUM_THREADS=str(omp), OPENBLAS_NUM_THREADS=str(blas), **extra,
                       **allocator_env)
            out = subprocess.run([binary, "--threads", str(omp), "--repeats", "1", *names], env=env,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"compare_pytorch: the LibTorch peer {binary} failed ({label}{allocator}):\n{out.stderr}")
            by_setting[label + allocator] = json.loads(out.stdout)
    return by_setting


def check_libtorch_model(binary, configs):
    """The LibTorch peer's first training loss against PyTorch's, same seed: the same model."""
    names = [c[0] for c in configs if c[0].startswith("BM_RealNVPTrainStep")]
    if not names:
        return
    out = subprocess.run([binary, "--loss", *names], capture_output=True, text=True, check=True)
    theirs = json.loads(out.stdout)
    check = ("import json, sys, torch; sys.path.insert(0, %r); import reference_pytorch as ref\n"
             "out = {}\n"
             "for name, h, b in json.loads(sys.argv[1]):\n"
             "    torch.manual_seed(0); m = ref.RealNVP(h); x = torch.randn(b, 2)\n"
             "    out[name] = (-m.log_prob(x).mean()).item()\n"
             "print(json.dumps(out))" % HERE)
    specs = [[c[0], c[3]["hidden"], c[3]["batch"]] for c in configs if c[0] in names]
    ours = json.loads(subprocess.run([sys.executable, "-c", check, json.dumps(specs)], capture_output=True,
                                     text=True, check=True).stdout)
    for name in names:
        if abs(theirs[name] - ours[name]) > 1e-5 * abs(ours[name]):
            sys.exit(f"compare_pytorch: the LibTorch peer is not PyTorch's model: first loss of {name} "
                     f"{theirs[name]} vs {ours[name]}")


# ---------------------------------------------------------------------------------------------
# flowgrad side.
# ---------------------------------------------------------------------------------------------
def run_ours(binary, names):
    """{benchmark: {ms, gflops}}: one run of each, in random order."""
    pattern = "^(" + "|".join(re.escape(n) for n in names) + ")$"
    out = subprocess.run([binary, f"--benchmark_filter={pattern}", "--benchmark_enable_random_interleaving=true",
                          "--benchmark_format=json"],
                         check=True, capture_output=True, text=True)
    results = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        results[b["run_name"]] = {"ms": b["real_time"] * scale, "gflops": b.get("GFLOP/s"),
                                  "label": b.get("label", "")}
    # The path flowgrad's kernels took (bench_flows labels each run "isa:avx512" or "isa:avx2").
    for r in results.values():
        r["isa"] = r["label"][4:] if r["label"].startswith("isa:") else None
    return results


def median_and_range(values):
    values = [v for v in values if v is not None]
    return (statistics.median(values), min(values), max(values)) if values else (None, None, None)


PEERS = ("PyTorch", "PyTorch tuned", "LibTorch")


def measure(binary, libtorch, per_threads, rounds):
    """Per round, flowgrad's run and the peers', in alternating order. Returns
    ({benchmark: [flowgrad run per round]}, {benchmark: {peer: {setting: [ms per round]}}})."""
    names = [c[0] for cs in per_threads.values() for c in cs] + ["BM_FmaPeak"]
    ours, torch = {}, {}

    def flowgrad_side():
        for name, r in run_ours(binary, names).items():
            ours.setdefault(name, []).append(r)

    def torch_side():
        for threads, cfgs in per_threads.items():
            configs = [[c[0], c[3]] for c in cfgs]
            runs = {"PyTorch": run_torch(threads, configs), "PyTorch tuned": run_torch(threads, configs, TUNED_ALLOCATOR)}
            if libtorch:
                runs["LibTorch"] = run_libtorch(libtorch, threads, [c[0] for c in cfgs])
            for peer, by_setting in runs.items():
                for label, times in by_setting.items():
                    for name, ms in times.items():
                        torch.setdefault(name, {}).setdefault(peer, {}).setdefault(label, []).append(ms)

    for r in range(rounds):
        sides = [flowgrad_side, torch_side] if r % 2 == 0 else [torch_side, flowgrad_side]
        for side in sides:
            side()
        print(f"round {r + 1} of {rounds} done", file=sys.stderr, flush=True)
    return ours, torch


def fmt_range(lo, hi):
    return f"{lo:.2f}-{hi:.2f}x" if lo is not None else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", help="build/bench/bench_flows")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--repeats", type=int, default=5, help="rounds of both sides")
    ap.add_argument("--filter", default="", help="only configurations whose name contains this")
    ap.add_argument("--only", default="", metavar="REGEX",
                    help="only configurations whose name (e.g. BM_NSFTrainStep/D:2/B:1024) matches this "
                         "regular expression (re.search; with --filter, both must match)")
    ap.add_argument("--libtorch", help="the LibTorch peer (bash bench/libtorch/build.sh); default: realnvp_peer "
                                       "beside the benchmark binary, if built")
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
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")
    try:
        thread_counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error(f"--threads takes comma-separated counts such as 1,2, got {args.threads!r}")
    if any(t < 1 for t in thread_counts):
        ap.error(f"--threads: every count must be at least 1, got {args.threads!r}")
    try:
        only = re.compile(args.only)
    except re.error as e:
        ap.error(f"--only {args.only!r} is not a regular expression: {e}")

    def wanted(name):
        return args.filter in name and only.search(name) is not None

    per_threads = {threads: [(bench_name(base, cfg, threads), base, cfg, spec)
                             for base, cfg, spec in configurations() if wanted(f"{base}/{cfg}")]
                   for threads in thread_counts}
    if not any(per_threads.values()):
        ap.error(f"--filter {args.filter!r} / --only {args.only!r} match no configuration (they are named "
                 f"like {bench_name(*configurations()[0][:2], 1)})")
    listed = set(subprocess.run([args.binary, "--benchmark_list_tests"], check=True, capture_output=True,
                                text=True).stdout.split())
    missing = [c[0] for cs in per_threads.values() for c in cs if c[0] not in listed]
    if missing:
        sys.exit(f"compare_pytorch: {args.binary} has no benchmark {missing[0]}"
                 + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
    libtorch = args.libtorch or os.path.join(os.path.dirname(os.path.abspath(args.binary)), "realnvp_peer")
    if not os.access(libtorch, os.X_OK):
        if args.libtorch:
            sys.exit(f"compare_pytorch: --libtorch {args.libtorch} is not an executable (bash bench/libtorch/build.sh)")
        print(f"compare_pytorch: no LibTorch peer at {libtorch} (bash bench/libtorch/build.sh builds it); "
              "comparing with PyTorch only", file=sys.stderr)
        libtorch = None
    else:
        check_libtorch_model(libtorch, [c for cs in per_threads.values() for c in cs])
    ours, torch = measure(args.binary, libtorch, per_threads, args.repeats)
    peak = median_and_range([r["gflops"] for r in ours.get("BM_FmaPeak", [])])[0]
    # BM_FmaPeak runs the widest FMA the CPU has; its label says which.
    peak_isa = next((r["label"] for r in ours.get("BM_FmaPeak", []) if r.get("label")), "?")
    for threads in thread_counts:
        for name, base, cfg, spec in per_threads[threads]:
            runs = ours.get(name, [])
            ms = median_and_range([o["ms"] for o in runs])[0]
            row = {"benchmark": name, "threads": threads, "flowgrad_ms": ms,
                   "flowgrad_gflops": median_and_range([o["gflops"] for o in runs])[0],
                   "flowgrad_isa": "/".join(sorted({o["isa"] for o in runs if o.get("isa")})) or None,
                   "flowgrad_runs_ms": [o["ms"] for o in runs], "peers": {}}
            for peer, settings in torch.get(name, {}).items():
                # Each peer's setting: the one with the fastest median.
                setting = min(settings, key=lambda k: statistics.median(settings[k]))
                peer_runs = settings[setting]
                ratio, lo, hi = median_and_range([t / o["ms"] for t, o in zip(peer_runs, runs)])
                row["peers"][peer] = {"ms": statistics.median(peer_runs), "setting": setting, "ratio": ratio,
                                      "ratio_min": lo, "ratio_max": hi, "runs_ms": peer_runs}
            best = min(row["peers"], key=lambda p: row["peers"][p]["ms"]) if row["peers"] else None
            row["best_peer"] = best
            plain = row["peers"].get("PyTorch", {})
            row.update(pytorch_ms=plain.get("ms"), pytorch_setting=plain.get("setting"), ratio=plain.get("ratio"),
                       ratio_min=plain.get("ratio_min"), ratio_max=plain.get("ratio_max"))
            rows.append(row)

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu}, {os.cpu_count()} cores; "
          f"{args.repeats} rounds: medians, and the range of the rounds' ratios")
    print(f"command: {' '.join(sys.argv)}")
    print()
    f = lambda v, fmt: (fmt.format(v) if v is not None else "-")
    if peak:
        print(f"measured float32 FMA peak of one core (BM_FmaPeak, {peak_isa}, the widest this CPU "
              f"has): {peak:.1f} GFLOP/s")
        print()
    isas = sorted({r["flowgrad_isa"] for r in rows if r["flowgrad_isa"]})
    print(f"flowgrad's kernels ran {', '.join(isas) or 'an unreported ISA'} "
          f"(FLOWGRAD_ISA={os.environ.get('FLOWGRAD_ISA', '')!r}; unset: the widest the CPU has)")
    print()
    print("Peers: PyTorch; PyTorch tuned (glibc allocator tuned: GLIBC_TUNABLES); LibTorch (C++, RealNVP rows "
          "only; its faster allocator setting). Ratio = peer ms / flowgrad ms, median of the rounds' ratios "
          "[their range]; the best peer is the row's fastest.")
    print()
    print("| configuration | threads | flowgrad ISA | flowgrad ms | PyTorch ms | PyTorch tuned ms | LibTorch ms | "
          "PyTorch / flowgrad | best peer / flowgrad | best peer | flowgrad GFLOP/s | % of one core's peak |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        share = 100 * r["flowgrad_gflops"] / peak if (peak and r["flowgrad_gflops"]) else None
        r["percent_of_peak"] = share
        peer_ms = lambda p: f(r["peers"].get(p, {}).get("ms"), "{:.2f}")
        best = r["peers"].get(r["best_peer"], {})

        def ratio(p):
            if not p:
                return "-"
            return f"{f(p['ratio'], '{:.2f}x')} [{fmt_range(p['ratio_min'], p['ratio_max'])}]"
        print(f"| {r['benchmark']} | {r['threads']} | {r['flowgrad_isa'] or '-'} | {f(r['flowgrad_ms'], '{:.2f}')} | "
              f"{peer_ms('PyTorch')} | {peer_ms('PyTorch tuned')} | {peer_ms('LibTorch')} | "
              f"{ratio(r['peers'].get('PyTorch'))} | {ratio(best)} | "
              f"{(r['best_peer'] + ' (' + best['setting'] + ')') if best else '-'} | "
              f"{f(r['flowgrad_gflops'], '{:.1f}')} | {f(share, '{:.0f}%')} |")
    # Scaling: every configuration run at 1 and at more threads.
    one = {r["benchmark"]: r for r in rows if r["threads"] == 1}
    more = [r for r in rows if r["threads"] > 1]
    if one and more:
        print()
        print("| configuration | threads | flowgrad ms | 1-thread ms | speed-up | over rounds |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in more:
            base = one.get(r["benchmark"].rsplit("/threads:", 1)[0])
            # The rounds' own speed-ups: each round's 1- and n-thread runs are minutes closer
            # together than the first and last rounds.
            up, lo, hi = median_and_range([a / b for a, b in zip(base["flowgrad_runs_ms"], r["flowgrad_runs_ms"])]
                                          if base else [])
            r.update(speedup_vs_1_thread=up, speedup_min=lo, speedup_max=hi)
            print(f"| {r['benchmark']} | {r['threads']} | {f(r['flowgrad_ms'], '{:.2f}')} | "
                  f"{f(base['flowgrad_ms'] if base else None, '{:.2f}')} | {f(up, '{:.2f}x')} | {fmt_range(lo, hi)} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"fma_peak_gflops": peak, "fma_peak_isa": peak_isa, "rounds": args.repeats,
                       "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
