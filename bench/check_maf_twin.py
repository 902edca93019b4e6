#!/usr/bin/python3
"""Does bench/reference_images.py's PyTorch twin compute the same function as flowgrad's model?

Loads a flowgrad train_images checkpoint (maf; realnvp and nsf too) into the PyTorch twin, then

  1. test bits/dim of that checkpoint in PyTorch on the 10,000 Fashion-MNIST test images, with
     reference_images.py's preprocessing and test noise (numpy, seed + 1), against the figure
     flowgrad reported in metrics.json (its own noise stream: expect ~0.001-0.005 bits/dim apart);
  2. unless --no-flowgrad: flowgrad's own log p of the *same* x (build/apps/train_2d eval --data
     CSV --log-prob-out), per sample, against PyTorch's; and with --per-layer (or automatically when
     they disagree) the same after each layer, from checkpoints truncated to the first k layers.

Run by hand, single-threaded:

    OMP_NUM_THREADS=1 nice -n 5 /usr/bin/python3 bench/check_maf_twin.py \
        /tmp/fm/maf10_s1/model.safetensors

Mapping (flowgrad/flows/*.cpp, docs/design.md section 7):
  - file: 8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}},
    "__metadata__" (strings; "flowgrad.architecture" is the layer chain), raw little-endian data;
    offsets count from the end of the header. Tensors "optimizer.*" are Adam's moments (ignored).
  - composition "layers.{i}." = the i-th layer of the chain = Flow.layers[i] here (same order:
    maf = MAF, perm, MAF, perm, ...; realnvp/nsf = perm, coupling, actnorm, ...).
  - MADE: "layers.{i}.made.layers.{l}.weight" [out, in] / ".bias" = made.net[2 l] (nn.Linear
    layout, y = x W^T + b). Masks are not stored (made.hpp): they follow from the degrees; the
    masked-out weights are stored as zeros (made.cpp add_layer) and stay zero (zero gradient).
  - permutation "layers.{i}.order" [dim] float: y[:, j] = x[:, order[j]] (permutation.hpp,
    permutation.cpp forward_impl -> select_columns(x, order)), i.e. torch's x[:, order].
  - bounded_affine (ops_bounded_affine.cpp): params column 2i = shift t_i, 2i + 1 = raw log-scale
    a_i, s = b tanh(a / b), y = x exp(s) + t, log|det| = sum s.
  - realnvp/nsf: the names are already the PyTorch twin's (s.0.weight, net.4.bias, b, logs, ...).
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import copy
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_images as ri  # noqa: E402  (sets torch to one thread)
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = os.path.dirname(HERE)
DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1"}
KIND_OF = {ri.Permutation: "permutation", ri.MaskedAffineAutoregressive: "masked_affine_autoregressive",
           ri.AffineCoupling: "affine_coupling", ri.SplineCoupling: "spline_coupling",
           ri.ActNorm: "actnorm"}
MODEL_OF_KIND = {"masked_affine_autoregressive": "maf", "affine_coupling": "realnvp",
                 "spline_coupling": "nsf"}


# ----------------------------------------------------------------------------------------------
# safetensors by hand
# ----------------------------------------------------------------------------------------------
def read_safetensors(path):
    """(metadata dict, {name: read-only numpy array}) of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {})
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    base = 8 + n
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        arr = np.frombuffer(raw[base + begin:base + end], dtype=np.dtype(DTYPES[e["dtype"]]))
        tensors[name] = arr.reshape(e["shape"])
    return meta, tensors


def write_safetensors(path, meta, tensors):
    """tensors: {name: numpy float32/float64 array}; header padded with spaces to 8 bytes."""
    rev = {np.dtype(v).str: k for k, v in DTYPES.items()}
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": rev[a.dtype.str], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------------------------
# flowgrad checkpoint -> PyTorch twin
# ----------------------------------------------------------------------------------------------
def made_masks_flowgrad(dim, outputs_per_dim, hidden, hidden_layers, context):
    """The masks [out, in] exactly as flowgrad/flows/made.cpp builds them (independent of
    reference_images.made_degrees)."""
    deg_in = np.array([i + 1 for i in range(dim)] + [0] * context)
    cycle = dim if context else max(dim - 1, 1)
    deg_h = np.array([(0 if context else 1) + k % cycle for k in range(hidden)])
    deg_out = np.array([o // outputs_per_dim + 1 for o in range(dim * outputs_per_dim)])
    masks = [deg_h[:, None] >= deg_in[None, :]]
    masks += [deg_h[:, None] >= deg_h[None, :] for _ in range(hidden_layers - 1)]
    masks.append(deg_out[:, None] > deg_h[None, :])
    return masks


def build_twin(meta):
    """The PyTorch twin of the checkpoint's architecture, as reference_images builds it."""
    arch = json.loads(meta["flowgrad.architecture"])
    if arch["kind"] != "composition":
        raise SystemExit(f"expected a composition, got {arch['kind']}")
    dim, layers = int(arch["dim"]), arch["layers"]
    main = [l for l in layers if l["kind"] in MODEL_OF_KIND]
    kinds = {l["kind"] for l in main}
    if len(kinds) != 1:
        raise SystemExit(f"unsupported architecture: {sorted({l['kind'] for l in layers})}")
    s = main[0]
    model = MODEL_OF_KIND[s["kind"]]
    hidden, hidden_layers = int(s["hidden"]), int(s["hidden_layers"])
    context = int(s.get("context", "0"))
    if s.get("activation", "relu") != "relu":
        raise SystemExit(f"the twin uses ReLU; the checkpoint {s['activation']}")
    tail = float(s.get("tail_bound", "3"))
    if model == "nsf" and int(s["bins"]) != 8:
        raise SystemExit("the twin's nsf has 8 bins")
    for l in main:  # all layers alike
        if {k: v for k, v in l.items() if k != "mask"} != {k: v for k, v in s.items() if k != "mask"}:
            raise SystemExit(f"layers differ in their settings: {l} vs {s}")
        if "mask" in l:
            mask = [int(v) for v in l["mask"].split(",")]
            if mask != [1] * (dim // 2) + [0] * (dim - dim // 2):
                raise SystemExit("a coupling mask is not 'keep the first dim // 2 columns'")
    flow = ri.build(model, dim, len(main), hidden, hidden_layers, context,
                    np.random.default_rng(0), tail)
    ours = [KIND_OF[type(m)] for m in flow.layers]
    theirs = [l["kind"] for l in layers]
    if ours != theirs:
        raise SystemExit(f"layer chains differ:\n  flowgrad {theirs}\n  pytorch  {ours}")
    if model == "maf":
        for m in flow.layers:
            if isinstance(m, ri.MaskedAffineAutoregressive):
                m.bound = float(s["log_scale_bound"])
    info = dict(model=model, dim=dim, hidden=hidden, hidden_layers=hidden_layers, context=context,
                arch=arch)
    return flow, info


def flowgrad_name(pt_name):
    """PyTorch state_dict name -> flowgrad tensor name (None: derived, not stored)."""
    parts = pt_name.split(".")
    if parts[-1] in ("mask", "logit_scale"):
        return None
    if len(parts) == 6 and parts[2] == "made" and parts[3] == "net":  # layers.i.made.net.k.weight
        return f"layers.{parts[1]}.made.layers.{int(parts[4]) // 2}.{parts[5]}"
    return pt_name


def load_into(flow, info, tensors):
    """Copies the checkpoint into the twin; returns notes on what was checked."""
    notes = []
    used = set()
    sd = flow.state_dict()
    with torch.no_grad():
        for name, dst in sd.items():
            src_name = flowgrad_name(name)
            if src_name is None:
                continue
            if src_name not in tensors:
                raise SystemExit(f"{src_name} (for {name}) is not in the checkpoint")
            src = np.asarray(tensors[src_name])
            if tuple(src.shape) != tuple(dst.shape):
                raise SystemExit(f"{src_name}: shape {src.shape}, the twin's {name} {tuple(dst.shape)}")
            if name.endswith(".order"):
                idx = src.astype(np.int64)
                if not (np.array_equal(idx, src) and np.array_equal(np.sort(idx), np.arange(len(idx)))):
                    raise SystemExit(f"{src_name} is not a permutation")
                dst.copy_(torch.from_numpy(idx))
            else:
                dst.copy_(torch.from_numpy(src.astype(np.float32)))
            used.add(src_name)
    unused = sorted(k for k in tensors if not k.startswith("optimizer.") and k not in used)
    if unused:
        raise SystemExit(f"checkpoint tensors not mapped: {unused}")
    notes.append(f"{len(used)} tensors mapped, none left over")
    if info["model"] == "maf":
        fg_masks = made_masks_flowgrad(info["dim"], 2, info["hidden"], info["hidden_layers"],
                                       info["context"])
        worst_leak, mask_diff = 0.0, 0
        for i, m in enumerate(flow.layers):
            if not isinstance(m, ri.MaskedAffineAutoregressive):
                continue
            lins = [x for x in m.made.net if isinstance(x, ri.MaskedLinear)]
            for l, (lin, fm) in enumerate(zip(lins, fg_masks)):
                mask_diff += int((lin.mask.numpy().astype(bool) != fm).sum())
                w = tensors[f"layers.{i}.made.layers.{l}.weight"]
                worst_leak = max(worst_leak, float(np.abs(w[~fm]).max(initial=0.0)))
        notes.append(f"twin masks vs made.cpp's rule: {mask_diff} entries differ")
        notes.append(f"largest |stored weight| where the mask is 0: {worst_leak:.3g}")
    return notes


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
LOG_2PI = math.log(2 * math.pi)


def per_layer_log_prob(flow, x, ctx=None, batch=500):
    """[n_layers, n] float64: log N(h_k) + sum of log-dets of layers 0..k, for every prefix k
    (the last row is log p_x(x))."""
    out = np.zeros((len(flow.layers), len(x)))
    dtype = next(flow.parameters()).dtype
    with torch.no_grad():
        for i in range(0, len(x), batch):
            h = torch.from_numpy(x[i:i + batch]).to(dtype)
            c = None if ctx is None else ctx[i:i + batch].to(dtype)
            ld = torch.zeros(h.shape[0], dtype=dtype)
            for k, layer in enumerate(flow.layers):
                h, d = layer(h, c)
                ld = ld + d
                lp = -0.5 * (h * h).sum(1) - 0.5 * h.shape[1] * LOG_2PI + ld
                out[k, i:i + batch] = lp.double().numpy()
    return out


def bits_per_dim(log_px, log_jac, dim):
    return (-float(np.mean(log_px)) - float(np.mean(log_jac))) / (dim * math.log(2))


def write_csv(path, x32):
    with open(path, "w") as f:
        f.write(",".join(f"x{j}" for j in range(x32.shape[1])) + "\n")
        np.savetxt(f, x32, fmt="%.9g", delimiter=",")


def flowgrad_log_prob(train2d, ckpt, x32, workdir, tag):
    """flowgrad's log p of each row of x32 (float32), via train_2d eval; rows matched back by value
    (eval shuffles them)."""
    data = os.path.join(workdir, "x.csv")
    write_csv(data, x32)
    out = os.path.join(workdir, f"lp_{tag}.csv")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = ["nice", "-n", "5", train2d, "eval", "--checkpoint", ckpt, "--data", data,
           "--log-prob-out", out, "--threads", "1"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    table = np.loadtxt(out, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    xs, lp = table[:, :-1].astype(np.float32), table[:, -1]
    where = {xs[i].tobytes(): i for i in range(len(xs))}
    idx = np.array([where[x32[i].tobytes()] for i in range(len(x32))])
    return lp[idx], r.stdout.strip()


def truncated_checkpoint(meta, tensors, k, path):
    """The first k layers of the checkpoint's chain as a checkpoint of their own."""
    arch = json.loads(meta["flowgrad.architecture"])
    arch["layers"] = arch["layers"][:k]
    keep = {n: np.asarray(t) for n, t in tensors.items()
            if not n.startswith("optimizer.") and int(n.split(".")[1]) < k}
    # flowgrad's loader budgets 2 x the file's data bytes + 16 MiB for the model's tensors
    # (flowgrad/flows/registry.cpp, load_flow), but a MADE weight costs 3 x (value, grad, mask), so
    # a multi-layer MAF without its optimizer state is refused. Adam's moments (zeros here; the
    # loader ignores "optimizer.*") make the file what train_images writes.
    for n in [n for n in keep if not n.endswith(".order") and not n.endswith(".initialized")]:
        for moment in ("exp_avg", "exp_avg_sq"):
            keep[f"optimizer.{moment}.{n}"] = np.zeros_like(keep[n])
    m = {key: meta[key] for key in ("flowgrad.model", "flowgrad.dtype", "model") if key in meta}
    m["flowgrad.architecture"] = json.dumps(arch, separators=(",", ":"))
    write_safetensors(path, m, keep)


def summarize(name, a, b):
    d = a - b
    return (f"{name}: mean diff {d.mean():+.3e}, mean |diff| {np.abs(d).mean():.3e}, "
            f"max |diff| {np.abs(d).max():.3e} nats (|log p| ~ {np.abs(b).mean():.1f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", nargs="?", default="/tmp/fm/maf10_s1/model.safetensors")
    ap.add_argument("--metrics", help="default: metrics.json beside the checkpoint")
    ap.add_argument("--seed", type=int, help="default: the run's, from metrics.json")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit", type=int, default=0, help="only the first N test images")
    ap.add_argument("--float64", action="store_true", help="also evaluate the twin in float64")
    ap.add_argument("--no-flowgrad", action="store_true", help="skip train_2d eval on the same x")
    ap.add_argument("--train2d", default=os.path.join(REPO, "build/apps/train_2d"))
    ap.add_argument("--fg-rows", type=int, default=10000,
                    help="rows of the same x that flowgrad evaluates (first N)")
    ap.add_argument("--per-layer", action="store_true",
                    help="compare log p after every layer prefix (also done on disagreement)")
    ap.add_argument("--per-layer-rows", type=int, default=500)
    ap.add_argument("--tol-bpd", type=float, default=0.005)
    ap.add_argument("--keep", help="keep the CSV and truncated checkpoints in this directory")
    args = ap.parse_args()

    meta, tensors = read_safetensors(args.checkpoint)
    metrics_path = args.metrics or os.path.join(os.path.dirname(args.checkpoint), "metrics.json")
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    seed = args.seed if args.seed is not None else metrics.get("seed")
    if seed is None:
        raise SystemExit("no metrics.json with the run's seed: pass --seed")
    lam = float(meta.get("lambda", metrics.get("lambda", 0.05)))

    flow, info = build_twin(meta)
    notes = load_into(flow, info, tensors)
    flow.eval()
    print(f"checkpoint {args.checkpoint}: {info['model']}, {len(flow.layers)} layers in the chain, "
          f"hidden {info['hidden']} x {info['hidden_layers']}, seed {seed}, lambda {lam}, "
          f"{sum(p.numel() for p in flow.parameters())} parameters "
          f"(flowgrad {metrics.get('parameters')})")
    for n in notes:
        print("  " + n)

    px, labels = ri.load_fashion_mnist(args.data_dir, "test")
    if args.limit:
        px, labels = px[:args.limit], labels[:args.limit]
    D = px.shape[1]
    noise = np.random.default_rng(seed + 1).random(px.shape)
    x, log_jac = ri.preprocess(px, noise, lam)
    x32 = x.astype(np.float32)
    ctx = ri.one_hot(labels) if info["context"] else None

    lp_layers = per_layer_log_prob(flow, x32, ctx)
    lp_pt = lp_layers[-1]
    bpd_pt = bits_per_dim(lp_pt, log_jac, D)
    fg_bpd = metrics.get("test_bits_per_dim")
    print(f"\nPyTorch twin, float32, {len(x)} test images, numpy noise (seed + 1): "
          f"{bpd_pt:.4f} bits/dim (-log p_x {-lp_pt.mean():.2f} nats)")
    if fg_bpd is not None:
        print(f"flowgrad's own (metrics.json, its noise stream): {fg_bpd:.4f} bits/dim "
              f"(-log p_x {metrics.get('test_nll_logit_space_nats', float('nan')):.2f} nats); "
              f"twin - flowgrad = {bpd_pt - fg_bpd:+.4f}")
    if args.float64:
        f64 = copy.deepcopy(flow).double()
        lp64 = per_layer_log_prob(f64, x, None if ctx is None else ctx.double())[-1]
        print(f"PyTorch twin, float64: {bits_per_dim(lp64, log_jac, D):.4f} bits/dim; "
              + summarize("float32 - float64", lp_pt, lp64))
        del f64

    if args.no_flowgrad:
        return 0
    if info["context"]:
        print("flowgrad on the same x: skipped (conditional model; train_2d eval needs "
              "context_columns metadata)")
        return 0
    if not os.access(args.train2d, os.X_OK):
        print(f"flowgrad on the same x: skipped ({args.train2d} not found)")
        return 0
    workdir = args.keep or tempfile.mkdtemp(prefix="check_maf_twin_")
    os.makedirs(workdir, exist_ok=True)
    try:
        n = min(args.fg_rows, len(x32))
        lp_fg, said = flowgrad_log_prob(args.train2d, args.checkpoint, x32[:n], workdir, "full")
        print(f"\nflowgrad ({args.train2d} eval) on the same {n} x: {said.splitlines()[0]}")
        print("  " + summarize("log p twin - flowgrad", lp_pt[:n], lp_fg))
        bf, bp = bits_per_dim(lp_fg, log_jac[:n], D), bits_per_dim(lp_pt[:n], log_jac[:n], D)
        print(f"  bits/dim on these {n}: twin {bp:.5f}, flowgrad {bf:.5f}, "
              f"difference {bp - bf:+.5f}")
        disagree = abs(bp - bf) > args.tol_bpd
        print("  => " + ("DISAGREE" if disagree else "agree") + f" (tolerance {args.tol_bpd} bits/dim)")

        if args.per_layer or disagree:
            m = min(args.per_layer_rows, n)
            print(f"\nper layer prefix (first {m} rows): log N(h_k) + sum log-det, twin - flowgrad")
            dx = os.path.join(workdir, "prefix")  # its own x.csv: the first m rows
            os.makedirs(dx, exist_ok=True)
            for k in range(1, len(flow.layers) + 1):
                path = os.path.join(dx, f"prefix{k}.safetensors")
                truncated_checkpoint(meta, tensors, k, path)
                lp_k, _ = flowgrad_log_prob(args.train2d, path, x32[:m], dx, f"k{k}")
                os.remove(path)
                kind = info["arch"]["layers"][k - 1]["kind"]
                print(f"  after layer {k - 1:2d} ({kind:29s}) "
                      + summarize("", lp_layers[k - 1][:m], lp_k)[2:])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
