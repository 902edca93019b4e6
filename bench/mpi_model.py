#!/usr/bin/env python3
"""Step time of data-parallel training at N ranks, modelled from the 1- and 2-rank measurements of
bench/mpi_scaling.sh and a ring allreduce over a network of stated bandwidth and latency.

    step(N) = compute(rows per rank) + allreduce(N)
    compute(b) = a + k b: the 1-rank and 2-rank compute times (allreduce taken out) give the
                 per-step overhead a and the cost per row k
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
        key = (r["model"], r["ranks"])
        if key not in best or r["ms_per_step"] < best[key]["ms_per_step"]:
            best[key] = r
    return best


def fit_compute(one, two):
    """(a, k) of compute(b) = a + k b, in ms, from the 1-rank (b = B) and 2-rank (b = B/2) steps."""
    c1 = one["ms_per_step"] - one["allreduce_ms_per_step"]
    c2 = two["ms_per_step"] - two["allreduce_ms_per_step"]
    b = one["batch"]
    k = max((c1 - c2) / (b / 2), 0.0)
    return max(c1 - k * b, 0.0), k


def allreduce_ms(n, grad_bytes, bandwidth, latency):
    return 1e3 * (2 * (n - 1) / n * grad_bytes / bandwidth + 2 * (n - 1) * latency)


def main(path):
    data = json.load(open(path))
    best = best_runs(data["runs"])
    print(f"Measured on {data['cpu']} ({data['cores']} cores), commit {data['commit']}, "
          f"{data['date']}: the faster of {max(r['round'] for r in data['runs'])} rounds")
    print()
    print("| model | parameters | gradient | batch | ranks | ms / step | in the allreduce (share) "
          "| allreduce alone |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (model, ranks), r in sorted(best.items()):
        share = r["allreduce_ms_per_step"] / r["ms_per_step"]
        print(f"| {model} | {r['parameters']:,} | {r['gradient_mb']:.2f} MB | {r['batch']} | {ranks} "
              f"| {r['ms_per_step']:.2f} | {r['allreduce_ms_per_step']:.3f} ms ({share:.1%}) "
              f"| {r['allreduce_alone_ms']:.3f} ms |")
    models = sorted({m for m, n in best if (m, 1) in best and (m, 2) in best})
    for net, (bw, lat) in NETWORKS.items():
        print()
        print(f"Modelled, {net} ({bw * 8 / 1e9:.0f} Gb/s, {lat * 1e6:.0f} us a message): ms per step "
              "(communication's share)")
        print()
        print("| model | scaling | " + " | ".join(f"N = {n}" for n in RANKS) + " |")
        print("|---|---|" + "---:|" * len(RANKS))
        for model in models:
            one, two = best[(model, 1)], best[(model, 2)]
            a, k = fit_compute(one, two)
            grad = one["gradient_mb"] * 1e6
            for scaling in ("strong", "weak"):
                cells = []
                for n in RANKS:
                    rows = one["batch"] / n if scaling == "strong" else one["batch"] / 2
                    if rows < 1:
                        cells.append("batch < N")
                        continue
                    comp = a + k * rows
                    comm = allreduce_ms(n, grad, bw, lat)
                    cells.append(f"{comp + comm:.2f} ({comm / (comp + comm):.0%})")
                what = (f"strong, batch {one['batch']}" if scaling == "strong"
                        else f"weak, {one['batch'] // 2} rows a rank")
                print(f"| {model} | {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/mpi_scaling.json")
