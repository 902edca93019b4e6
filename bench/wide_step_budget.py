#!/usr/bin/env python3
"""The wide-layer regime: one training step of a 784-dimensional affine coupling (s and t nets
392 -> 1024 -> 1024 -> 392, ReLU, batch 256: BM_WideCouplingTrainStep in bench_flows) against the
time its matrix products take stand-alone (bench_kernels' BM_Gemm_Ours and BM_Gemm_OpenBLAS on the
same shapes).

    python3 bench/wide_step_budget.py build/bench/bench_kernels build/bench/bench_flows [--rounds 3]

The step's products, per net: the forward of each of the 3 layers (as the MLP node runs it at this
batch, y^T = W x^T: n = 256), the weight gradient of each (k = 256), and the input gradient of layers 1 and 2 (the coupling's input x1 is data, so the
first layer's input gradient is never formed): 8 products, 16 for the two nets. Their stand-alone
times summed are the "budget"; the step / budget ratio says how much of the step is anything else
(activations, the coupling's column work, Adam over 2.9 M parameters, the tape) plus whatever the
products lose inside the step. Rounds alternate the two binaries; medians over rounds, one thread
(OPENBLAS_NUM_THREADS=1). The step is measured twice: as backward() then Adam's step(), and with
Adam inside the backward pass (Adam::backward_step, the ".../fused" benchmark). Prints markdown;
--json writes the figures.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

BATCH, LAYERS = 256, [(392, 1024), (1024, 1024), (1024, 392)]
STEP = "BM_WideCouplingTrainStep/D:784/H:1024/B:256"
FUSED = STEP + "/fused"


def products():
    """(name suffix, flops, count) of the step's products: count is 2 (the s and t nets)."""
    out = []
    for i, (fan_in, fan_out) in enumerate(LAYERS):
        out.append((f"fwd_wxt/m:{fan_out}/n:{BATCH}/k:{fan_in}/ta:0/tb:1", 2 * BATCH * fan_in * fan_out))
        out.append((f"bwd_dw/m:{fan_out}/n:{fan_in}/k:{BATCH}/ta:1/tb:0", 2 * BATCH * fan_in * fan_out))
        if i > 0:
            out.append((f"bwd_dx/m:{BATCH}/n:{fan_in}/k:{fan_out}/ta:0/tb:0", 2 * BATCH * fan_in * fan_out))
    return out


def run_json(cmd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd + ["--benchmark_format=json"], env=env, check=True, capture_output=True, text=True)
    res = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        res[re.sub(r"/min_time:[0-9.]+$", "", b["run_name"])] = b["real_time"] * scale
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_kernels")
    ap.add_argument("bench_flows")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    for b in (args.bench_kernels, args.bench_flows):
        if not os.access(b, os.X_OK):
            sys.exit(f"wide_step_budget: {b} is not an executable (build: bash scripts/setup.sh)")

    prods = products()
    gemm_filter = "^BM_Gemm_(Ours|OpenBLAS)/(" + "|".join(re.escape(p[0]) for p in prods) + ")"
    times = {}  # name -> [ms per round]
    for r in range(args.rounds):
        runs = [lambda: run_json([args.bench_kernels, f"--benchmark_filter={gemm_filter}",
                                  "--benchmark_enable_random_interleaving=true"]),
                lambda: run_json([args.bench_flows, f"--benchmark_filter=^{re.escape(STEP)}(/fused)?$",
                                  "--benchmark_enable_random_interleaving=true"])]
        for run in (runs if r % 2 == 0 else runs[::-1]):
            for name, ms in run().items():
                times.setdefault(name, []).append(ms)
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    missing = [p[0] for p in prods for impl in ("Ours", "OpenBLAS") if f"BM_Gemm_{impl}/{p[0]}" not in med]
    if missing or STEP not in med or FUSED not in med:
        sys.exit(f"wide_step_budget: missing results for {missing or [STEP, FUSED]} (an older binary?)")
    print("| product | GFLOP | ours ms | ours GFLOP/s | OpenBLAS ms | OpenBLAS GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    budget = {"Ours": 0.0, "OpenBLAS": 0.0}
    for name, flops in prods:
        o, b = med[f"BM_Gemm_Ours/{name}"], med[f"BM_Gemm_OpenBLAS/{name}"]
        budget["Ours"] += 2 * o
        budget["OpenBLAS"] += 2 * b
        print(f"| {name} | {flops / 1e9:.3f} | {o:.3f} | {flops / o / 1e6:.1f} | {b:.3f} | {flops / b / 1e6:.1f} |")
    step, fused = med[STEP], med[FUSED]
    total_flops = 2 * sum(p[1] for p in prods)
    print()
    print(f"Each product runs twice (the s and t nets): {total_flops / 1e9:.2f} GFLOP a step.")
    print(f"- stand-alone, our gemm: {budget['Ours']:.2f} ms ({total_flops / budget['Ours'] / 1e6:.1f} GFLOP/s)")
    print(f"- stand-alone, OpenBLAS: {budget['OpenBLAS']:.2f} ms ({total_flops / budget['OpenBLAS'] / 1e6:.1f} GFLOP/s)")
    for name, ms in ((STEP, step), (FUSED, fused)):
        print(f"- {name}: {ms:.2f} ms = {ms / budget['Ours']:.3f}x our products' budget, "
              f"{ms / budget['OpenBLAS']:.3f}x OpenBLAS's")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "medians_ms": med, "runs_ms": times, "budget_ours_ms": budget["Ours"],
                       "budget_openblas_ms": budget["OpenBLAS"], "step_ms": step,
                       "step_over_budget": step / budget["Ours"], "fused_step_ms": fused,
                       "fused_step_over_budget": fused / budget["Ours"], "flops": total_flops}, f, indent=2)


if __name__ == "__main__":
    main()
