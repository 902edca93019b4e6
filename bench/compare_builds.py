#!/usr/bin/python3
"""Two builds of bench_flows against each other, in paired rounds (is a change slower?).

    python3 bench/compare_builds.py BASE_BINARY NEW_BINARY [--filter REGEX] [--rounds 7] [--json OUT]
        [--base-env VAR=VALUE]... [--new-env VAR=VALUE]...

The two may be one binary run under different environments: the AVX2 path against the widest
(flowgrad/tensor/isa.hpp) is
    python3 bench/compare_builds.py build/bench/bench_flows build/bench/bench_flows \
        --base-env FLOWGRAD_ISA=avx2 --new-env FLOWGRAD_ISA=avx512

Each round runs both binaries once on the same benchmarks, alternating which goes first, so the
two sides of a ratio are measured moments apart on a machine whose speed drifts by tens of percent
within minutes. A ratio is base time / new time (above 1: the new build is faster), reported as the
median of the rounds' own ratios with their range. Run by hand, not in CI.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run(binary, pattern, min_time, env):
    out = subprocess.run(
        [binary, f"--benchmark_filter={pattern}", "--benchmark_format=json",
         f"--benchmark_min_time={min_time}"],
        check=True, capture_output=True, text=True, env=env).stdout
    to_ms = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    return {b["name"]: b["real_time"] * to_ms[b["time_unit"]] for b in json.loads(out)["benchmarks"]
            if b.get("run_type", "iteration") == "iteration"}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--filter", default="BM_RealNVP|BM_Planar")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per benchmark per run")
    p.add_argument("--json", help="write every round's times here")
    p.add_argument("--base-env", action="append", default=[], metavar="VAR=VALUE",
                   help="set in the base binary's environment (repeatable)")
    p.add_argument("--new-env", action="append", default=[], metavar="VAR=VALUE",
                   help="set in the new binary's environment (repeatable)")
    a = p.parse_args()

    def environment(assignments):
        env = dict(os.environ)
        for kv in assignments:
            if "=" not in kv:
                sys.exit(f"compare_builds.py: {kv!r} is not VAR=VALUE")
            var, value = kv.split("=", 1)
            env[var] = value
        return env
    envs = {"base": environment(a.base_env), "new": environment(a.new_env)}
    if a.rounds < 1:
        sys.exit("compare_builds.py: --rounds must be at least 1")
    rounds = []
    for r in range(a.rounds):
        order = [("base", a.base), ("new", a.new)]
        if r % 2:
            order.reverse()
        times = {side: run(binary, a.filter, a.min_time, envs[side]) for side, binary in order}
        rounds.append(times)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    names = [n for n in rounds[0]["base"] if n in rounds[0]["new"]]
    if not names:
        sys.exit(f"compare_builds.py: no benchmark matches --filter {a.filter!r} in both binaries")
    print(f"| benchmark | base ms | new ms | base / new | over {a.rounds} rounds |")
    print("|---|---:|---:|---:|---:|")
    for n in names:
        base = [t["base"][n] for t in rounds]
        new = [t["new"][n] for t in rounds]
        ratios = [b / m for b, m in zip(base, new)]
        print(f"| {n} | {statistics.median(base):.3f} | {statistics.median(new):.3f} | "
              f"{statistics.median(ratios):.3f}x | {min(ratios):.3f}-{max(ratios):.3f}x |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"base": a.base, "new": a.new, "base_env": a.base_env, "new_env": a.new_env,
                       "rounds": rounds}, f, indent=1)


if __name__ == "__main__":
    main()
