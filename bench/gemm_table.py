#!/usr/bin/env python3
"""Runs bench_kernels' gemm benchmarks and prints ours vs OpenBLAS as a markdown table.

Usage: python3 bench/gemm_table.py build/bench/bench_kernels [extra benchmark flags...]

Each shape is run 3 times, interleaved at random (medians reported) for our gemm and for cblas_sgemm, in the same
process and single-threaded both (OPENBLAS_NUM_THREADS=1 is set for the child as well), so the
ratio stays meaningful on a noisy machine. Standard library only.
"""
import json
import os
import re
import subprocess
import sys

NAME = re.compile(
    r"^BM_Gemm_(?P<impl>Ours|OpenBLAS)/(?P<pass>\w+)/m:(?P<m>\d+)/n:(?P<n>\d+)/k:(?P<k>\d+)"
    r"/ta:(?P<ta>[01])/tb:(?P<tb>[01])"
)


def run(binary, extra):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cmd = [
        binary,
        "--benchmark_filter=^BM_Gemm_",
        "--benchmark_format=json",
        "--benchmark_repetitions=3",
        "--benchmark_report_aggregates_only=true",
        # Repetitions of all benchmarks in random order: slow phases of a shared machine then
        # hit ours and OpenBLAS alike instead of whichever happened to run at the time.
        "--benchmark_enable_random_interleaving=true",
        *extra,
    ]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def medians(report):
    """{(pass, m, n, k, ta, tb): {impl: GFLOP/s}} from the median aggregates."""
    table = {}
    # With --benchmark_repetitions=1 there are no aggregates: the single runs stand in for them.
    has_median = any(b.get("aggregate_name") == "median" for b in report["benchmarks"])
    for bench in report["benchmarks"]:
        is_median = bench.get("run_type") == "aggregate" and bench.get("aggregate_name") == "median"
        if has_median != is_median:
            continue
        match = NAME.match(bench["run_name"])
        if not match:
            continue
        g = match.groupdict()
        key = (g["pass"], int(g["m"]), int(g["n"]), int(g["k"]), g["ta"] == "1", g["tb"] == "1")
        table.setdefault(key, {})[g["impl"]] = bench["GFLOP/s"]
    return table


def transposes(ta, tb):
    return ("A^T" if ta else "A") + " " + ("B^T" if tb else "B")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    table = medians(run(sys.argv[1], sys.argv[2:]))
    print("| pass | m | n | k | op | ours GFLOP/s | OpenBLAS GFLOP/s | ours / OpenBLAS |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    pass_order = {"fwd": 0, "fwd_wxt": 1, "bwd_dx": 2, "bwd_dw": 3}
    for key in sorted(table, key=lambda key: (pass_order.get(key[0], 9), *key[1:])):
        pass_, m, n, k, ta, tb = key
        ours = table[key].get("Ours")
        blas = table[key].get("OpenBLAS")
        ratio = f"{ours / blas:.2f}" if ours and blas else "-"
        fmt = lambda v: f"{v:.1f}" if v is not None else "-"
        print(f"| {pass_} | {m} | {n} | {k} | {transposes(ta, tb)} | {fmt(ours)} | {fmt(blas)} "
              f"| {ratio} |")


if __name__ == "__main__":
    main()
