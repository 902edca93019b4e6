#!/usr/bin/python3
"""PyTorch twin of flowgrad's build/apps/train_images (Fashion-MNIST, bits/dim), realnvp only.

Run by hand (not in CI) with Debian's python3-torch, single-threaded:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference_images.py \
        --layers 6 --hidden 256 --epochs 2 --batch 256 --seed 0 --json /tmp/ref_images_s0.json

Protocol (apps/train_images/main.cpp, image_data.cpp, image_models.cpp):

  data:   a pixel v in 0..255 becomes u = (v + U(0,1)) / 256, p = lam + (1 - 2 lam) u,
          x = logit(p); log P(v) ~ log p_x(x) + sum_i [log(1 - 2 lam) - log p_i - log(1 - p_i)]
          - D log 256, bits/dim = -log P(v) / (D ln 2), D = 784.
  model:  per layer a fixed random permutation of the 784 columns, an affine coupling that keeps
          the first 392 (permuted) columns and maps the rest to x2 exp(s) + t (s, t: MLPs
          392 [+10] -> H -> H -> 392, ReLU, tanh on s's output), then ActNorm(784) with
          data-dependent initialisation on the first training batch. Base: standard normal.
  train:  Adam lr 1e-3; steps = epochs * (60000 // batch); each step draws `batch` training
          images uniformly with replacement and fresh noise; loss = -mean log p_x(x).
  test:   eval mode, all 10,000 test images, one noise draw, batches of 500.

Randomness is numpy's (permutations, batches, noise; seed, test noise seed + 1) and torch's
(weights, torch.manual_seed(seed)); same distributions as flowgrad, not its RNG stream. nn.Linear's
default initialisation is flowgrad's: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
`--selftest` checks log-dets against autograd Jacobians in float64.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gzip
import json
import math
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)

CLASSES = 10
LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def read_idx(path):
    """An IDX file (gzip) as a uint8 numpy array of its stated shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


def load_fashion_mnist(data_dir, split):
    stem = os.path.join(data_dir, "train" if split == "train" else "t10k")
    images = read_idx(stem + "-images-idx3-ubyte.gz")
    labels = read_idx(stem + "-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise ValueError(f"{stem}: {len(labels)} labels for {len(images)} images")
    return images.reshape(len(images), -1), labels.astype(np.int64)


def preprocess(pixels, noise, lam):
    """Pixels [n, D] uint8 and noise [n, D] in [0, 1) -> x [n, D] float64 and each row's
    log-Jacobian sum_i [log(1 - 2 lam) - log p_i - log(1 - p_i)] - D log 256 (float64)."""
    u = (pixels.astype(np.float64) + noise) / 256
    p = lam + (1 - 2 * lam) * u
    x = np.log(p) - np.log1p(-p)
    log_jac = (math.log(1 - 2 * lam) - np.log(p) - np.log1p(-p)).sum(1)
    return x, log_jac - pixels.shape[1] * math.log(256)


def one_hot(labels):
    return torch.from_numpy(np.eye(CLASSES, dtype=np.float32)[labels])


# ----------------------------------------------------------------------------------------------
# Flow layers: forward(x, ctx) -> (y, log|det dy/dx| per row)
# ----------------------------------------------------------------------------------------------
class Permutation(nn.Module):
    def __init__(self, dim, rng):
        super().__init__()
        self.register_buffer("order", torch.from_numpy(rng.permutation(dim)))

    def forward(self, x, ctx=None):
        return x[:, self.order], x.new_zeros(x.shape[0])


def mlp(sizes, out_act=None):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """Keeps the first dim // 2 columns x1; y2 = x2 exp(s(x1)) + t(x1), log|det| = sum s."""

    def __init__(self, dim, hidden, hidden_layers=2, context=0):
        super().__init__()
        self.d1 = dim // 2
        sizes = [self.d1 + context] + [hidden] * hidden_layers + [dim - self.d1]
        self.s = mlp(sizes, nn.Tanh())
        self.t = mlp(sizes)

    def forward(self, x, ctx=None):
        x1, x2 = x[:, :self.d1], x[:, self.d1:]
        h = x1 if ctx is None else torch.cat([x1, ctx], 1)
        s = self.s(h)
        return torch.cat([x1, x2 * torch.exp(s) + self.t(h)], 1), s.sum(1)


class ActNorm(nn.Module):
    """y = (x + b) exp(logs); the first training forward sets b = -mean, logs = -log(std + 1e-6)
    (biased std, in float64) from its batch."""

    def __init__(self, dim):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(dim))
        self.logs = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.zeros(1))

    def forward(self, x, ctx=None):
        if self.training and self.initialized.item() == 0:
            with torch.no_grad():
                v = x.detach().double()
                self.b.copy_(-v.mean(0))
                self.logs.copy_(-torch.log(v.std(0, unbiased=False) + 1e-6))
                self.initialized.fill_(1)
        return (x + self.b) * torch.exp(self.logs), self.logs.sum().expand(x.shape[0])


class Flow(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, ctx=None):
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x, ctx)
            log_det = log_det + ld
        return x, log_det

    def log_prob(self, x, ctx=None):
        z, log_det = self(x, ctx)
        return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_2PI + log_det


def realnvp(dim, layers, hidden, hidden_layers, context, rng):
    blocks = []
    for _ in range(layers):
        blocks += [Permutation(dim, rng), AffineCoupling(dim, hidden, hidden_layers, context),
                   ActNorm(dim)]
    return Flow(blocks)


# ----------------------------------------------------------------------------------------------
# Protocol
# ----------------------------------------------------------------------------------------------
def run(args):
    train_px, train_lab = load_fashion_mnist(args.data_dir, "train")
    test_px, test_lab = load_fashion_mnist(args.data_dir, "test")
    n_train, D = train_px.shape
    steps = args.epochs * max(1, n_train // args.batch)
    context = CLASSES if args.conditional else 0

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = realnvp(D, args.layers, args.hidden, args.hidden_layers, context, rng)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"reference_images: realnvp ({args.layers} layers, hidden {args.hidden} x "
          f"{args.hidden_layers}{', class-conditional' if args.conditional else ''}, {n_params} "
          f"parameters): {args.epochs} epochs = {steps} steps of batch {args.batch}, "
          f"lambda {args.lam}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
          file=sys.stderr)

    model.train()
    losses = []
    start = time.perf_counter()
    for step in range(1, steps + 1):
        rows = rng.integers(0, n_train, size=args.batch)
        x, _ = preprocess(train_px[rows], rng.random((args.batch, D)), args.lam)
        ctx = one_hot(train_lab[rows]) if args.conditional else None
        loss = -model.log_prob(torch.from_numpy(x).float(), ctx).mean()
        if not torch.isfinite(loss):
            raise RuntimeError(f"step {step}: the loss became {loss.item()}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.log_every == 0 or step == steps:
            el = time.perf_counter() - start
            print(f"step {step}/{steps}: loss {loss.item():.2f} ({step / el:.2f} steps/s)",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - start

    model.eval()
    test_rng = np.random.default_rng(args.seed + 1)
    x, log_jac = preprocess(test_px, test_rng.random(test_px.shape), args.lam)
    x = torch.from_numpy(x).float()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            ctx = one_hot(test_lab[i:i + 500]) if args.conditional else None
            total += model.log_prob(x[i:i + 500], ctx).double().sum().item()
    nll = -total / len(x)
    mean_jac = float(log_jac.mean())
    bpd = (nll - mean_jac) / (D * math.log(2))
    print(f"test: {bpd:.4f} bits/dim on {len(x)} images (-log p_x {nll:.2f} nats, "
          f"preprocessing {-mean_jac:.2f} nats)")
    print(f"{steps} steps in {wall:.1f} s ({steps / wall:.3f} steps/s)")

    if args.json:
        out = {"implementation": "pytorch", "torch": torch.__version__,
               "python": platform.python_version(), "threads": torch.get_num_threads(),
               "dataset": "fashion-mnist", "model": "realnvp", "layers": args.layers,
               "hidden": args.hidden, "hidden_layers": args.hidden_layers,
               "conditional": args.conditional, "parameters": n_params, "epochs": args.epochs,
               "steps": steps, "batch": args.batch, "lr": args.lr, "lambda": args.lam,
               "seed": args.seed, "train_images": n_train, "test_images": len(x),
               "wall_time_s": wall, "steps_per_s": steps / wall,
               "final_train_loss": losses[-1], "test_bits_per_dim": bpd,
               "test_nll_logit_space_nats": nll, "preprocessing_nats": -mean_jac}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


# ----------------------------------------------------------------------------------------------
# Self-test (float64)
# ----------------------------------------------------------------------------------------------
def selftest():
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    worst = 0.0
    ok = True

    def report(name, err, tol):
        nonlocal worst, ok
        passed = err < tol
        ok &= passed
        print(f"  {'ok  ' if passed else 'FAIL'} {name}: max abs error {err:.2e} (tol {tol:g})")

    # 1. Permutation -> coupling -> ActNorm (twice), with and without context: log-det per row
    #    against log|det J| of the autograd Jacobian of that row's map.
    d, n = 6, 5
    for context in (0, CLASSES):
        flow = Flow([Permutation(d, rng), AffineCoupling(d, 8, 2, context), ActNorm(d),
                     Permutation(d, rng), AffineCoupling(d, 8, 2, context), ActNorm(d)])
        x = torch.randn(64, d) * 2 + 1
        ctx = one_hot(rng.integers(0, CLASSES, 64)).double() if context else None
        flow.train()
        y, _ = flow(x, ctx)  # initialises both ActNorms from this batch
        stats = max(y.mean(0).abs().max().item(),
                    (y.var(0, unbiased=False) - 1).abs().max().item())
        # var is (std / (std + 1e-6))^2 = 1 - O(1e-6), not exactly 1
        report(f"first-batch ActNorm output mean 0 / var 1 (context {context})", stats, 1e-5)
        with torch.no_grad():  # move b, logs off their initial values
            for p in flow.parameters():
                p.add_(0.3 * torch.randn_like(p))
        flow.eval()
        xs, cs = torch.randn(n, d), (ctx[:n] if context else None)
        _, log_det = flow(xs, cs)
        err = 0.0
        for i in range(n):
            c = None if cs is None else cs[i:i + 1]
            J = torch.autograd.functional.jacobian(lambda r: flow(r[None], c)[0][0], xs[i])
            err = max(err, abs(torch.linalg.slogdet(J)[1].item() - log_det[i].item()))
        report(f"log-det of 2 x (permutation, coupling, actnorm), d={d}, context {context}",
               err, 1e-9)

    # 2. Preprocessing: per-row log-Jacobian = log|det dx/du| - D log 256 with u = (v + noise) /
    #    256, x = logit(lam + (1 - 2 lam) u), for a few pixels including 0 and 255.
    lam = 0.05
    pixels = np.array([[0, 1, 37, 128, 254, 255], [255, 0, 200, 3, 90, 17]], dtype=np.uint8)
    noise = rng.random(pixels.shape)
    x_np, log_jac = preprocess(pixels, noise, lam)
    err_x, err_j = 0.0, 0.0
    for r in range(len(pixels)):
        u0 = torch.from_numpy((pixels[r].astype(np.float64) + noise[r]) / 256)

        def to_x(u):
            p = lam + (1 - 2 * lam) * u
            return torch.log(p / (1 - p))

        J = torch.autograd.functional.jacobian(to_x, u0)
        direct = torch.linalg.slogdet(J)[1].item() - pixels.shape[1] * math.log(256)
        err_x = max(err_x, float(np.abs(to_x(u0).numpy() - x_np[r]).max()))
        err_j = max(err_j, abs(direct - log_jac[r]))
    report("preprocessing x = logit(lam + (1 - 2 lam) u)", err_x, 1e-12)
    report("preprocessing per-row log-Jacobian vs autograd log|dx/du| - D log 256", err_j, 1e-9)

    # 3. Base density: log_prob of an identity-like flow (empty) is the standard normal's.
    z = torch.randn(4, 3)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    report("standard-normal base log-density", (Flow([]).log_prob(z) - ref).abs().max().item(),
           1e-12)

    # 4. Parameter count of the default protocol's model (matches flowgrad's printout).
    torch.set_default_dtype(torch.float32)
    m = realnvp(784, 6, 256, 2, 0, np.random.default_rng(0))
    count = sum(p.numel() for p in m.parameters())
    expected = 6 * (2 * (392 * 256 + 256 + 256 * 256 + 256 + 256 * 392 + 392) + 2 * 784)
    report(f"parameters of realnvp 6 x 256: {count}", abs(count - expected), 0.5)
    print("selftest:", "passed" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--hidden-layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lam", "--lambda", dest="lam", type=float, default=0.05)
    ap.add_argument("--conditional", action="store_true", help="one-hot label as context")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", help="write the metrics here")
    ap.add_argument("--selftest", action="store_true", help="run the float64 checks and exit")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    if args.epochs < 1 or args.batch < 2 or not 0 < args.lam < 0.5:
        ap.error("need --epochs >= 1, --batch >= 2, 0 < --lam < 0.5")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
