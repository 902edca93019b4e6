#!/usr/bin/env python3
"""Step time of data-parallel training at N ranks, from the 1- and 2-rank measurements of
bench/mpi_scaling.sh and a ring allreduce over a network of stated bandwidth and latency.

    step(N) = compute(B / N) + allreduce(N)
    compute(b) = compute at 1 rank * b / B + the per-step overhead (intercept of the 1- and 2-rank fit)
    allreduce(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency   (ring: reduce-scatter,
                   then all-gather, each N - 1 rounds)
"""
import json
import sys

NETWORKS = {  # bytes/s per direction per rank, seconds per message
    "25 GbE": (25e9 / 8, 10e-6),
    "100 Gb/s InfiniBand": (100e9 / 8, 2e-6),
}
RANKS = [1, 2, 8, 64, 512]


def main(path):
    data = json.load(open(path))
    runs = data["runs"]
    print(f"measured on {data['cpu']} ({data['cores']} cores), commit {data['commit']}:")
    print("| model | parameters | gradient MB | ranks | ms / step | allreduce ms | share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    best = {}
    for r in runs:
        key = (r["model"], r["ranks"])
        if key not in best or r["ms_per_step"] < best[key]["ms_per_step"]:
            best[key] = r
    for (model, ranks), r in sorted(best.items()):
        share = r["allreduce_ms_per_step"] / r["ms_per_step"]
        print(f"| {model} | {r['parameters']:,} | {r['gradient_mb']:.2f} | {ranks} | "
              f"{r['ms_per_step']:.3f} | {r['allreduce_ms_per_step']:.3f} | {share:.0%} |")
    print()
    for net, (bw, lat) in NETWORKS.items():
        print(f"model, {net} ({bw * 8 / 1e9:.0f} Gb/s, {lat * 1e6:.0f} us per message), same global batch:")
        print("| model | batch | " + " | ".join(f"N = {n}" for n in RANKS[2:]) + " |")
        print("|---|---:|" + "---:|" * len(RANKS[2:]))
        for model in sorted({m for m, _ in best}):
            if (model, 1) not in best or (model, 2) not in best:
                continue
            one, two = best[(model, 1)], best[(model, 2)]
            c1 = one["ms_per_step"] - one["allreduce_ms_per_step"]
            c2 = two["ms_per_step"] - two["allreduce_ms_per_step"]
            # compute(b) = a + k b through the two points (b = B and B / 2).
            k = max((c1 - c2) / (one["batch"] / 2), 0.0)
            a = max(c1 - k * one["batch"], 0.0)
            grad_bytes = one["gradient_mb"] * 1e6
            cells = []
            for n in RANKS[2:]:
                b = one["batch"] / n
                compute = a + k * b
                comm = 1e3 * (2 * (n - 1) / n * grad_bytes / bw + 2 * (n - 1) * lat)
                cells.append(f"{compute + comm:.2f} ms ({comm / (compute + comm):.0%} comm)")
            print(f"| {model} | {one['batch']} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/mpi_scaling.json")
