#!/usr/bin/env python3
"""Step time of data-parallel training at N ranks, modelled from the 1- and 2-rank measurements of
bench/mpi_scaling.sh and a ring allreduce over a network of stated bandwidth and latency.

    step(N) = compute(rows per rank) + allreduce(N)
    compute(b) = a + k b: one rank's step at the full batch B and at B / 8 give the per-step cost a
                 and the cost per row k (two ranks on one machine share its memory system and
                 would blur them; their step is shown as measured, beside the ideal halving)
    allreduce(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency
                   (a ring: reduce-scatter, then all-gather, N - 1 rounds each)

Two ways to use more ranks: the same global batch cut finer (strong scaling; needs N <= batch), or
the same rows per rank, so a global batch N times larger (weak scaling).
"""
import json
import sys

NETWORKS = {  # bytes per second per rank and direction, seconds per message
    "25 Gb Ethernet": (25e9 / 8, 10e-6),
    "100 Gb/s InfiniBand": (100e9 / 8, 2e-6),
}
RANKS = [8, 64, 512]


def best_runs(runs):
    best = {}
    for r in runs:
        key = (r["model"], r["ranks"], r["batch"])
        if key not in best or r["ms_per_step"] < best[key]["ms_per_step"]:
            best[key] = r
    return best


def compute_ms(r):
    return r["ms_per_step"] - r["allreduce_ms_per_step"]


def fit_compute(full, small):
    """(a, k) of compute(b) = a + k b, in ms, from one rank's steps at b = B and at b = B / 8."""
    k = max((compute_ms(full) - compute_ms(small)) / (full["batch"] - small["batch"]), 0.0)
    return max(compute_ms(full) - k * full["batch"], 0.0), k


def allreduce_ms(n, grad_bytes, bandwidth, latency):
    return 1e3 * (2 * (n - 1) / n * grad_bytes / bandwidth + 2 * (n - 1) * latency)


def main(path):
    data = json.load(open(path))
    best = best_runs(data["runs"])
    print(f"Measured on {data['cpu']} ({data['cores']} cores), commit {data['commit']}, "
          f"{data['date']}: the faster of {max(r['round'] for r in data['runs'])} rounds")
    print()
    print("| model | parameters | gradient | batch | ranks | ms / step | of which in the allreduce "
          "| allreduce alone | 2 ranks vs ideal |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    full_batch = {}
    for (model, ranks, batch) in best:
        full_batch[model] = max(full_batch.get(model, 0), batch)
    for (model, ranks, batch), r in sorted(best.items()):
        share = r["allreduce_ms_per_step"] / r["ms_per_step"]
        vs_ideal = ""
        if ranks == 2 and (model, 1, batch) in best:
            vs_ideal = f"{best[(model, 1, batch)]['ms_per_step'] / 2 / r['ms_per_step']:.0%}"
        print(f"| {model} | {r['parameters']:,} | {r['gradient_mb']:.2f} MB | {batch} | {ranks} "
              f"| {r['ms_per_step']:.2f} | {r['allreduce_ms_per_step']:.3f} ms ({share:.1%}) "
              f"| {r['allreduce_alone_ms']:.3f} ms | {vs_ideal} |")
    for net, (bw, lat) in NETWORKS.items():
        print()
        print(f"Modelled, {net} ({bw * 8 / 1e9:.0f} Gb/s, {lat * 1e6:.0f} us a message): ms per step "
              "(communication's share)")
        print()
        print("| model | gradient | scaling | " + " | ".join(f"N = {n}" for n in RANKS) + " |")
        print("|---|---:|---|" + "---:|" * len(RANKS))
        for model in sorted(full_batch):
            b = full_batch[model]
            if (model, 1, b) not in best or (model, 1, b // 8) not in best:
                continue
            full, small = best[(model, 1, b)], best[(model, 1, b // 8)]
            a, k = fit_compute(full, small)
            grad = full["gradient_mb"] * 1e6
            for scaling in ("strong", "weak"):
                cells = []
                for n in RANKS:
                    rows = b / n if scaling == "strong" else b
                    if rows < 1:
                        cells.append("batch < N")
                        continue
                    comp = a + k * rows
                    comm = allreduce_ms(n, grad, bw, lat)
                    cells.append(f"{comp + comm:.2f} ({comm / (comp + comm):.0%})")
                what = (f"strong: batch {b} in all" if scaling == "strong"
                        else f"weak: {b} rows a rank")
                print(f"| {model} | {full['gradient_mb']:.2f} MB | {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/mpi_scaling.json")
