#!/usr/bin/env python3
"""The quality protocol (docs/design.md §5) via train_2d: RealNVP (H = 64; or --model) trained 10,000 steps
at batch 512 with seed 0 on every toy dataset, test NLL on 20,000 points drawn with seed 1; and
32-layer planar flows fitted to U1..U4, with their final KL. Prints a markdown table, and beside
it PyTorch's figures when bench/reference_pytorch.py's JSON is given.

    python3 bench/quality.py build/apps/train_2d [--pytorch bench/results/pytorch_reference.json]
"""
import argparse
import json
import os
import subprocess
import sys

DATASETS = ["moons", "8gaussians", "circles", "rings", "pinwheel", "2spirals", "checkerboard", "swissroll"]
ENERGIES = ["U1", "U2", "U3", "U4"]


def run(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train_2d")
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0, help="training seed; test points use seed + 1")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--energies", default=",".join(ENERGIES))
    ap.add_argument("--model", default="realnvp", help="train_2d train --model (realnvp, nsf, maf, nsf-ar)")
    ap.add_argument("--vi-model", default="planar", help="train_2d vi --model (planar, iaf, nsf)")
    ap.add_argument("--pytorch", help="JSON written by bench/reference_pytorch.py --json")
    ap.add_argument("--json", help="write our figures here too")
    args = ap.parse_args()

    ours = {}
    for name in filter(None, args.datasets.split(",")):
        out = os.path.join(args.out, args.model + "-" + name)
        # RealNVP's protocol fixes H = 64; the other models keep their builder's defaults.
        hidden = ["--hidden", "64"] if args.model == "realnvp" else []
        run([args.train_2d, "train", "--model", args.model, "--dataset", name, "--steps", str(args.steps),
             "--batch", "512", *hidden, "--seed", str(args.seed), "--log-every", "2500", "--out", out])
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        ours[name] = {"test_nll": m["test_nll_nats"], "wall_time_s": m["wall_time_s"]}
    for name in filter(None, args.energies.split(",")):
        out = os.path.join(args.out, "vi-" + args.vi_model + "-" + name)
        layers = ["--layers", "32"] if args.vi_model == "planar" else []
        run([args.train_2d, "vi", "--model", args.vi_model, "--energy", name, *layers, "--steps", str(args.steps), "--batch", "512",
             "--seed", str(args.seed), "--log-every", "2500", "--out", out])
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        ours[name] = {"kl": m["kl_nats"], "kl_std_error": m["kl_std_error"], "log_z": m["log_z"],
                      "wall_time_s": m["wall_time_s"]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(ours, f, indent=2)

    ref = {}
    if args.pytorch:
        with open(args.pytorch) as f:
            ref = json.load(f)

    def ref_value(name, key):
        # reference_pytorch.py writes {"density": [{"dataset": ..., "test_nll": ...}], "vi": [{"energy": ...}]}.
        for section, label in (("density", "dataset"), ("vi", "energy")):
            for entry in ref.get(section, []):
                if entry.get(label) == name and key in entry:
                    return entry[key]
        return None

    print("| dataset | flowgrad test NLL (nats) | PyTorch test NLL | difference | flowgrad wall time (s) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in ours.items():
        if "test_nll" not in r:
            continue
        p = ref_value(name, "test_nll")
        diff = f"{r['test_nll'] - p:+.4f}" if p is not None else "-"
        ps = f"{p:.4f}" if p is not None else "-"
        print(f"| {name} | {r['test_nll']:.4f} | {ps} | {diff} | {r['wall_time_s']:.1f} |")
    if any("kl" in r for r in ours.values()):
        print()
        print("| energy | flowgrad KL (nats) | PyTorch KL | log Z | flowgrad wall time (s) |")
        print("|---|---:|---:|---:|---:|")
        for name, r in ours.items():
            if "kl" not in r:
                continue
            p = ref_value(name, "kl")
            ps = f"{p:.4f}" if p is not None else "-"
            print(f"| {name} | {r['kl']:.4f} ± {r['kl_std_error']:.4f} | {ps} | {r['log_z']:.4f} | {r['wall_time_s']:.1f} |")


if __name__ == "__main__":
    main()
