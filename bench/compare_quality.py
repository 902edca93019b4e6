#!/usr/bin/env python3
"""Compares test NLL (and KL) of flowgrad and PyTorch over several seeds.

    python3 bench/compare_quality.py --ours ours-s0.json ours-s1.json ... --pytorch ref-s0.json ref-s1.json ...

--ours files are written by bench/quality.py --json, --pytorch files by
bench/reference_pytorch.py --json. For each dataset (energy) it prints each implementation's mean
and the standard deviation across seeds, and the difference of the means with its standard error:
with one seed per run the seed-to-seed spread of a flow's test NLL is larger than the 0.03 nats
being asked about, so only means over seeds can say whether two implementations agree.
"""
import argparse
import json
import math
import statistics


def load_ours(paths, key):
    out = {}
    for p in paths:
        with open(p) as f:
            for name, r in json.load(f).items():
                if key in r:
                    out.setdefault(name, []).append(r[key])
    return out


def load_pytorch(paths, section, label, key):
    out = {}
    for p in paths:
        with open(p) as f:
            for r in json.load(f).get(section, []):
                out.setdefault(r[label], []).append(r[key])
    return out


def describe(values):
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return m, sd


def table(title, ours, ref):
    print(f"| {title} | flowgrad mean (sd, n) | PyTorch mean (sd, n) | difference ± s.e. |")
    print("|---|---:|---:|---:|")
    for name in ours:
        if name not in ref:
            continue
        mo, so = describe(ours[name])
        mr, sr = describe(ref[name])
        se = math.sqrt((so ** 2 if len(ours[name]) > 1 else 0) / len(ours[name]) +
                       (sr ** 2 if len(ref[name]) > 1 else 0) / len(ref[name]))
        print(f"| {name} | {mo:.4f} ({so:.4f}, {len(ours[name])}) | {mr:.4f} ({sr:.4f}, {len(ref[name])}) | "
              f"{mo - mr:+.4f} ± {se:.4f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", nargs="+", required=True)
    ap.add_argument("--pytorch", nargs="+", required=True)
    args = ap.parse_args()
    table("dataset (test NLL, nats)", load_ours(args.ours, "test_nll"),
          load_pytorch(args.pytorch, "density", "dataset", "test_nll"))
    print()
    table("energy (KL, nats)", load_ours(args.ours, "kl"), load_pytorch(args.pytorch, "vi", "energy", "kl"))


if __name__ == "__main__":
    main()
