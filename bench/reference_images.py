#!/usr/bin/python3
"""PyTorch twin of flowgrad's build/apps/train_images (Fashion-MNIST, bits/dim): realnvp, maf, nsf.

Run by hand (not in CI) with Debian's python3-torch, single-threaded:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference_images.py \
        --layers 6 --hidden 256 --epochs 2 --batch 256 --seed 0 --json /tmp/ref_images_s0.json
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference_images.py \
        --model nsf --hidden 1024 --layers 4 --epochs 2 --seed 0 --json /tmp/ref_nsf_s0.json

Protocol (apps/train_images/main.cpp, image_data.cpp, image_models.cpp):

  data:   a pixel v in 0..255 becomes u = (v + U(0,1)) / 256, p = lam + (1 - 2 lam) u,
          x = logit(p); log P(v) ~ log p_x(x) + sum_i [log(1 - 2 lam) - log p_i - log(1 - p_i)]
          - D log 256, bits/dim = -log P(v) / (D ln 2), D = 784.
  models: flowgrad's three image models (docs/design.md sections 4 and 13), data -> latent, base
          standard normal; [+10] is the one-hot label of --conditional; ActNorm initialises from
          the first training batch (b = -mean, logs = -log(std + 1e-6)).
    realnvp  per layer a fixed random permutation of the 784 columns, an affine coupling that keeps
             the first 392 (permuted) columns and maps the rest to x2 exp(s) + t (s, t: MLPs
             392 [+10] -> H -> H -> 392, ReLU, tanh on s's output), then ActNorm(784).
             Defaults here: 6 layers, H = 256.
    maf      make_maf: MAF layers with a fixed random permutation between consecutive layers (none
             before the first, no ActNorm). Each layer's MADE is 784 [+10] -> H -> H -> 1568 (ReLU)
             with input i of degree i + 1, context inputs of degree 0, hidden unit k of degree
             1 + k mod 783 (with a context k mod 784), output column o of degree o // 2 + 1,
             masks deg_out >= deg_in (hidden) and > (output), the last layer zero. Column 2i is
             the shift t_i, 2i + 1 the raw log-scale a_i: s = 3 tanh(a / 3), y = x exp(s) + t,
             log|det| = sum s. Defaults: 5 layers, H = 1024.
    nsf      per layer a fixed random permutation, a rational-quadratic spline coupling on the
             392 last (permuted) columns, 8 bins on [-tail_bound, tail_bound] = [-3, 3] (identity
             outside), conditioner 392 [+10] -> H -> H -> 392 x 23 (ReLU, last layer zero), whose
             width and height logits are multiplied by 1/sqrt(H); bins and heights at least 1e-3
             of the range, interior knot derivatives 1e-3 + softplus, boundary ones 1; the spline
             runs in float64, as flowgrad's kernel does. Then ActNorm(784). Defaults: 4 layers,
             H = 1024.
  train:  Adam lr 1e-3; steps = epochs * (60000 // batch); each step draws `batch` training
          images uniformly with replacement and fresh noise; loss = -mean log p_x(x).
  test:   eval mode, all 10,000 test images, one noise draw, batches of 500.

Randomness is numpy's (permutations, batches, noise; seed, test noise seed + 1) and torch's
(weights, torch.manual_seed(seed)); same distributions as flowgrad, not its RNG stream. nn.Linear's
default initialisation is flowgrad's: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) (in: the
layer's full input width, masked inputs included, for MADE too).
`--selftest` checks log-dets against autograd Jacobians and MADE's autoregressive masks in float64,
and the parameter counts of realnvp 6 x 256 and of flowgrad's default maf and nsf models.
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
import torch.nn.functional as F

from reference_pytorch import rq_spline

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


class MaskedLinear(nn.Linear):
    """nn.Linear whose weight is multiplied by a fixed 0/1 mask [out, in] on every call, so the
    masked-out weights get zero gradients and Adam never moves them."""

    def __init__(self, d_in, d_out, mask):
        super().__init__(d_in, d_out)
        self.register_buffer("mask", mask.to(self.weight.dtype))
        with torch.no_grad():  # flowgrad stores zeros there too; the function does not depend on it
            self.weight.mul_(self.mask)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


def made_degrees(dim, outputs_per_dim, hidden, context):
    """Degrees of flowgrad's MADE (flowgrad/flows/made.cpp): inputs, hidden units, outputs."""
    deg_in = torch.cat([torch.arange(1, dim + 1), torch.zeros(context, dtype=torch.long)])
    # Without a context a hidden unit of degree 0 would see nothing; with one, the degree-0 units
    # are what let output block 0 (which sees no x) depend on the context.
    if context:
        deg_h = torch.arange(hidden) % dim
    else:
        deg_h = 1 + torch.arange(hidden) % max(dim - 1, 1)
    deg_out = torch.arange(1, dim + 1).repeat_interleave(outputs_per_dim)
    return deg_in, deg_h, deg_out


class MADE(nn.Module):
    """[x, ctx] -> dim * outputs_per_dim columns, dimension-major: the outputs of column i see only
    x_0..x_{i-1} (and all of ctx). ReLU between layers; the last layer starts at zero."""

    def __init__(self, dim, outputs_per_dim, hidden, hidden_layers, context=0):
        super().__init__()
        deg_in, deg_h, deg_out = made_degrees(dim, outputs_per_dim, hidden, context)
        layers = [MaskedLinear(dim + context, hidden, deg_h[:, None] >= deg_in[None, :]),
                  nn.ReLU()]
        for _ in range(hidden_layers - 1):
            layers += [MaskedLinear(hidden, hidden, deg_h[:, None] >= deg_h[None, :]), nn.ReLU()]
        layers.append(MaskedLinear(hidden, dim * outputs_per_dim,
                                   deg_out[:, None] > deg_h[None, :]))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x, ctx=None):
        return self.net(x if ctx is None else torch.cat([x, ctx], 1))


class MaskedAffineAutoregressive(nn.Module):
    """flowgrad's bounded_affine: s = b tanh(a / b) keeps every layer's scale within exp(+-b) while
    staying the identity near a = 0, where the zero last layer starts it."""

    def __init__(self, dim, hidden, hidden_layers, context=0, log_scale_bound=3.0):
        super().__init__()
        self.bound = log_scale_bound
        self.made = MADE(dim, 2, hidden, hidden_layers, context)

    def forward(self, x, ctx=None):
        out = self.made(x, ctx)
        t, s = out[:, 0::2], self.bound * torch.tanh(out[:, 1::2] / self.bound)
        return x * torch.exp(s) + t, s.sum(1)


class SplineCoupling(nn.Module):
    """Keeps the first dim // 2 columns x1; each other column goes through its own
    rational-quadratic spline whose 3K - 1 parameters the conditioner computes from [x1, ctx]."""

    def __init__(self, dim, bins, tail_bound, hidden, hidden_layers=2, context=0):
        super().__init__()
        self.d1, self.bins, self.bound = dim // 2, bins, tail_bound
        per = 3 * bins - 1
        self.net = mlp([self.d1 + context] + [hidden] * hidden_layers + [(dim - self.d1) * per])
        # Every spline starts as the same fixed map of equal bins.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        # 1/sqrt(H) on the width and height logits only, as flowgrad's spline_logit_scale; float64
        # because flowgrad applies it inside its double-precision spline kernel.
        scale = torch.ones(per, dtype=torch.float64)
        scale[:2 * bins] = 1 / math.sqrt(hidden)
        self.register_buffer("logit_scale", scale.repeat(dim - self.d1))

    def forward(self, x, ctx=None):
        x1, x2 = x[:, :self.d1], x[:, self.d1:]
        h = x1 if ctx is None else torch.cat([x1, ctx], 1)
        params = self.net(h).double() * self.logit_scale
        y2, log_d = rq_spline(x2.double(), params, self.bins, self.bound)
        return torch.cat([x1, y2.to(x.dtype)], 1), log_d.sum(1).to(x.dtype)


def maf(dim, layers, hidden, hidden_layers, context, rng):
    blocks = []
    for i in range(layers):
        if i:
            blocks.append(Permutation(dim, rng))
        blocks.append(MaskedAffineAutoregressive(dim, hidden, hidden_layers, context))
    return Flow(blocks)


def nsf(dim, layers, hidden, hidden_layers, context, rng, tail_bound=3.0, bins=8):
    blocks = []
    for _ in range(layers):
        blocks += [Permutation(dim, rng),
                   SplineCoupling(dim, bins, tail_bound, hidden, hidden_layers, context),
                   ActNorm(dim)]
    return Flow(blocks)


MODELS = {"realnvp": realnvp, "maf": maf, "nsf": nsf}
# flowgrad's defaults (apps/train_images/image_models.*), except realnvp's width: this script's
# realnvp protocol has always been the h256 one, and its default stays.
DEFAULT_LAYERS = {"realnvp": 6, "maf": 5, "nsf": 4}
DEFAULT_HIDDEN = {"realnvp": 256, "maf": 1024, "nsf": 1024}


def build(model, dim, layers, hidden, hidden_layers, context, rng, tail_bound=3.0):
    if model == "nsf":
        return nsf(dim, layers, hidden, hidden_layers, context, rng, tail_bound)
    return MODELS[model](dim, layers, hidden, hidden_layers, context, rng)


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
    model = build(args.model, D, args.layers, args.hidden, args.hidden_layers, context, rng,
                  args.tail_bound)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    extra = f", tail bound {args.tail_bound}" if args.model == "nsf" else ""
    print(f"reference_images: {args.model} ({args.layers} layers, hidden {args.hidden} x "
          f"{args.hidden_layers}{', class-conditional' if args.conditional else ''}, {n_params} "
          f"parameters): {args.epochs} epochs = {steps} steps of batch {args.batch}, "
          f"lambda {args.lam}{extra}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)", file=sys.stderr)

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
               "dataset": "fashion-mnist", "model": args.model, "layers": args.layers,
               "hidden": args.hidden, "hidden_layers": args.hidden_layers,
               "conditional": args.conditional, "parameters": n_params, "epochs": args.epochs,
               "steps": steps, "batch": args.batch, "lr": args.lr, "lambda": args.lam,
               "seed": args.seed, "train_images": n_train, "test_images": len(x),
               "wall_time_s": wall, "steps_per_s": steps / wall,
               "final_train_loss": losses[-1], "test_bits_per_dim": bpd,
               "test_nll_logit_space_nats": nll, "preprocessing_nats": -mean_jac}
        if args.model == "nsf":
            out["tail_bound"] = args.tail_bound
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


# ----------------------------------------------------------------------------------------------
# Self-test (float64)
# ----------------------------------------------------------------------------------------------
def log_det_error(flow, xs, cs):
    """Largest |log-det per row - log|det J|| over the rows of xs, J the autograd Jacobian of that
    row's map (float64)."""
    _, log_det = flow(xs, cs)
    err = 0.0
    for i in range(len(xs)):
        c = None if cs is None else cs[i:i + 1]
        J = torch.autograd.functional.jacobian(lambda r: flow(r[None], c)[0][0], xs[i])
        err = max(err, abs(torch.linalg.slogdet(J)[1].item() - log_det[i].item()))
    return err


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
        report(f"log-det of 2 x (permutation, coupling, actnorm), d={d}, context {context}",
               log_det_error(flow, xs, cs), 1e-9)

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

    # 4. Small maf and nsf image models (d = 7, so the halves are uneven as in an odd width), with
    #    and without context: log-det per row against the autograd Jacobian. Every parameter is
    #    moved off its start, since the zero last layers make both models start as (nearly) fixed
    #    maps whose Jacobians would test little. The nsf inputs are spread so that the splines see
    #    values inside and outside +-tail_bound.
    d, n, bound = 7, 6, 3.0
    for name in ("maf", "nsf"):
        for context in (0, CLASSES):
            flow = build(name, d, 3, 16, 2, context, rng, tail_bound=bound)
            x = torch.randn(64, d) * 2
            ctx = one_hot(rng.integers(0, CLASSES, 64)).double() if context else None
            flow.train()
            flow(x, ctx)  # initialises nsf's ActNorms
            with torch.no_grad():
                for p in flow.parameters():
                    p.add_(0.5 * torch.randn_like(p))
            flow.eval()
            xs, cs = torch.randn(n, d) * 2.5, (ctx[:n] if context else None)
            if name == "nsf":
                first = flow.layers[0](xs)[0][:, d // 2:]  # what the first splines see
                outside = int((first.abs() > bound).sum())
                if not 0 < outside < first.numel():
                    report(f"nsf test points on both sides of +-{bound:g}", 1.0, 0.5)
            report(f"log-det of {name} (3 layers, hidden 16 x 2), d={d}, context {context}",
                   log_det_error(flow, xs, cs), 1e-9)

    # 5. MADE's autoregressive property: with random weights everywhere (the last layer too), the
    #    Jacobian of output block i (3 columns per input) with respect to x is zero at x_j, j >= i,
    #    and nonzero somewhere over many points at every j < i (the masks hide nothing they
    #    should not); with a context every block depends on it, block 0 too. Many points and 3
    #    hidden units per degree because block 0 hears the context only through the few
    #    degree-0 units, which a ReLU can switch off at a handful of points.
    d, per = 6, 3
    for context in (0, CLASSES):
        made = MADE(d, per, 18, 2, context)
        with torch.no_grad():
            for p in made.parameters():
                p.copy_(torch.randn_like(p))
        block = torch.arange(d * per) // per
        allowed = torch.arange(d)[None, :] < block[:, None]  # [outputs, inputs]
        seen_x, seen_c, forbidden = torch.zeros(d * per, d), torch.zeros(d * per), 0.0
        for _ in range(64):
            xr = torch.randn(d)
            cr = one_hot(rng.integers(0, CLASSES, 1)).double()[0] if context else None
            if context:
                Jx, Jc = torch.autograd.functional.jacobian(
                    lambda a, b: made(a[None], b[None])[0], (xr, cr))
                seen_c += Jc.abs().sum(1)
            else:
                Jx = torch.autograd.functional.jacobian(lambda a: made(a[None])[0], xr)
            seen_x += Jx.abs()
            forbidden = max(forbidden, Jx[~allowed].abs().max().item())
        report(f"MADE d={d}, {per} outputs per input, context {context}: Jacobian at x_j, "
               f"j >= i (must be 0)", forbidden, 1e-300)
        missing = int((seen_x[allowed] == 0).sum())
        if context:
            missing += int((seen_c == 0).sum())
        report(f"MADE d={d}, context {context}: allowed dependencies never seen", missing, 0.5)

    # 6. Parameter counts of the default protocol's realnvp and of flowgrad's default maf and nsf
    #    at hidden 1024 (what train_images prints; bench/results/fmnist_full_width_s0.json).
    #    MADE's masked-out weights count, as they do in flowgrad: they are stored, at zero.
    torch.set_default_dtype(torch.float32)
    m = realnvp(784, 6, 256, 2, 0, np.random.default_rng(0))
    count = sum(p.numel() for p in m.parameters())
    expected = 6 * (2 * (392 * 256 + 256 + 256 * 256 + 256 + 256 * 392 + 392) + 2 * 784)
    report(f"parameters of realnvp 6 x 256: {count}", abs(count - expected), 0.5)
    for name, expected in (("maf", 17303200), ("nsf", 42780000)):
        m = build(name, 784, DEFAULT_LAYERS[name], 1024, 2, 0, np.random.default_rng(0))
        count = sum(p.numel() for p in m.parameters())
        report(f"parameters of {name} {DEFAULT_LAYERS[name]} layers x 1024 x 2: {count} "
               f"(flowgrad {expected})", abs(count - expected), 0.5)
        del m
    print("selftest:", "passed" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", choices=sorted(MODELS), default="realnvp")
    ap.add_argument("--layers", type=int, help="default: realnvp 6, maf 5, nsf 4 (flowgrad's)")
    ap.add_argument("--hidden", type=int,
                    help="default: realnvp 256, maf and nsf 1024 (flowgrad's)")
    ap.add_argument("--hidden-layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lam", "--lambda", dest="lam", type=float, default=0.05)
    ap.add_argument("--conditional", action="store_true", help="one-hot label as context")
    ap.add_argument("--tail-bound", type=float, default=3.0,
                    help="nsf: the splines act on [-B, B] (flowgrad's image default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--json", help="write the metrics here")
    ap.add_argument("--selftest", action="store_true", help="run the float64 checks and exit")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    if args.epochs < 1 or args.batch < 2 or not 0 < args.lam < 0.5:
        ap.error("need --epochs >= 1, --batch >= 2, 0 < --lam < 0.5")
    if args.layers is None:
        args.layers = DEFAULT_LAYERS[args.model]
    if args.hidden is None:
        args.hidden = DEFAULT_HIDDEN[args.model]
    if args.layers < 1 or args.hidden < 1 or args.hidden_layers < 1 or not args.tail_bound > 0:
        ap.error("need --layers, --hidden, --hidden-layers >= 1 and --tail-bound > 0")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
