#!/usr/bin/python3
"""PyTorch reference for flowgrad's 2-D quality protocols (docs/design.md sections 4-6).

Run by hand (not in CI) with Debian's python3-torch, single-threaded:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference_pytorch.py \
        --part all --json bench/results/pytorch_reference.json

It trains the same models under the same protocol as flowgrad's apps/train_2d so that flowgrad's
test NLL (density) and KL (planar VI) can be compared with PyTorch's:

  density: RealNVP (8 affine couplings with alternating masks, batch norm after every coupling but
           the last, s/t MLPs 1 -> H -> H -> 1 with ReLU, tanh on s), H = 64, batch 512, Adam lr 1e-3,
           a fresh batch every step from a numpy generator seeded 0, torch.manual_seed(0); test NLL
           (nats, eval mode) on 20,000 points drawn from a generator seeded 1.
  vi:      32 planar layers fitted to U1..U4 (+ the soft wall W) by reverse KL, batch 512, Adam lr
           1e-3, seed 0; KL = mean over 100,000 fresh samples (seed 1) of (log q + U + W) + log Z,
           log Z by the midpoint rule on a 1000 x 1000 grid.

The datasets follow docs/design.md section 6 (same distribution; not flowgrad's exact RNG stream).
NSF (8 rational-quadratic spline couplings, NSF-C) and MAF (5 MADE layers with permutations) are
speed twins of bench/bench_flows.cpp's models for bench/compare_pytorch.py; no protocol trains them.
`--selftest` runs small correctness checks (log-dets against autograd Jacobians, inverses, ...).
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import math
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

DATASETS = ["moons", "8gaussians", "circles", "rings", "pinwheel", "2spirals", "checkerboard",
            "swissroll"]
ENERGIES = ["U1", "U2", "U3", "U4"]
LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------------
# Datasets (docs/design.md section 6), numpy float64 maths, float32 output.
# ----------------------------------------------------------------------------------------------
def _moons(n, rng):
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)])
    x = x[rng.permutation(n)]
    x = x + 0.1 * rng.standard_normal((n, 2))
    return x * 2 + np.array([-1.0, -0.2])


def _eight_gaussians(n, rng):
    s = 1 / math.sqrt(2)
    centres = 4 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    e = 0.5 * rng.standard_normal((n, 2))
    k = rng.integers(0, 8, size=n)
    return (centres[k] + e) / 1.414


def _circles(n, rng):
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        0.5 * np.stack([np.cos(t_in), np.sin(t_in)], 1)])
    x = x[rng.permutation(n)]
    x = x + 0.08 * rng.standard_normal((n, 2))
    return x * 3


def _rings(n, rng):
    q = n // 4
    counts = [q, q, q, n - 3 * q]
    radii = [1.0, 0.75, 0.5, 0.25]
    parts = []
    for c, r in zip(counts, radii):
        t = np.linspace(0, 2 * np.pi, c, endpoint=False)
        parts.append(3 * r * np.stack([np.cos(t), np.sin(t)], 1))
    x = np.concatenate(parts)
    x = x[rng.permutation(n)]
    return x + 0.08 * rng.standard_normal((n, 2))


def _pinwheel(n, rng):
    per_arm = n // 5
    e = rng.standard_normal((5 * per_arm, 2))
    f1 = 1 + 0.3 * e[:, 0]
    f2 = 0.1 * e[:, 1]
    k = np.repeat(np.arange(5), per_arm)
    a = 2 * np.pi * k / 5 + 0.25 * np.exp(f1)
    c, s = np.cos(a), np.sin(a)
    x = np.stack([f1 * c + f2 * s, -f1 * s + f2 * c], 1)
    x = x[rng.permutation(5 * per_arm)]
    return 2 * x


def _two_spirals(n, rng):
    h = n // 2
    t = np.sqrt(rng.random(h)) * 3 * np.pi
    u1 = rng.random(h)
    u2 = rng.random(h)
    d = np.stack([-t * np.cos(t) + 0.5 * u1, t * np.sin(t) + 0.5 * u2], 1)
    x = np.concatenate([d, -d]) / 3
    return x + 0.1 * rng.standard_normal((2 * h, 2))


def _checkerboard(n, rng):
    x1 = 4 * rng.random(n) - 2
    u = rng.random(n)
    bit = rng.integers(0, 2, size=n)
    x2 = u - 2 * bit + np.floor(x1) % 2
    return 2 * np.stack([x1, x2], 1)


def _swissroll(n, rng):
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    e = rng.standard_normal((n, 2))
    return np.stack([t * np.cos(t) + e[:, 0], t * np.sin(t) + e[:, 1]], 1) / 5


_GENERATORS = {"moons": _moons, "8gaussians": _eight_gaussians, "circles": _circles,
               "rings": _rings, "pinwheel": _pinwheel, "2spirals": _two_spirals,
               "checkerboard": _checkerboard, "swissroll": _swissroll}


def sample_dataset(name, n, rng):
    """float32 tensor [m, 2]; m = n except pinwheel (5 floor(n/5)) and 2spirals (2 floor(n/2))."""
    return torch.from_numpy(_GENERATORS[name](n, rng).astype(np.float32))


# ----------------------------------------------------------------------------------------------
# Density model: RealNVP with batch norm (docs/design.md section 4).
# ----------------------------------------------------------------------------------------------
def _mlp(d_in, hidden, d_out):
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))


class AffineCoupling(nn.Module):
    """d = 2: parity 0 keeps column 0 fixed, parity 1 keeps column 1 fixed."""

    def __init__(self, parity, hidden):
        super().__init__()
        self.parity = parity
        self.s = nn.Sequential(_mlp(1, hidden, 1), nn.Tanh())
        self.t = _mlp(1, hidden, 1)

    def _split(self, x):
        if self.parity == 0:
            return x[:, :1], x[:, 1:]
        return x[:, 1:], x[:, :1]

    def _join(self, fixed, moved):
        if self.parity == 0:
            return torch.cat([fixed, moved], 1)
        return torch.cat([moved, fixed], 1)

    def forward(self, x):
        x1, x2 = self._split(x)
        s = self.s(x1)
        y2 = x2 * torch.exp(s) + self.t(x1)
        return self._join(x1, y2), s.sum(1)

    def inverse(self, y):
        y1, y2 = self._split(y)
        s = self.s(y1)
        x2 = (y2 - self.t(y1)) * torch.exp(-s)
        return self._join(y1, x2), -s.sum(1)


class BatchNormBijector(nn.Module):
    def __init__(self, dim, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x):
        if self.training:
            mean = x.mean(0)
            var = ((x - mean) ** 2).mean(0)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.detach())
        else:
            mean, var = self.running_mean, self.running_var
        var_eps = var + self.eps
        y = (x - mean) / torch.sqrt(var_eps) * torch.exp(self.log_gamma) + self.beta
        log_det = (self.log_gamma - 0.5 * torch.log(var_eps)).sum()
        return y, log_det.expand(x.shape[0])

    def inverse(self, y):
        assert not self.training, "batch norm is invertible in eval mode only"
        var_eps = self.running_var + self.eps
        x = (y - self.beta) * torch.exp(-self.log_gamma) * torch.sqrt(var_eps) + self.running_mean
        log_det = (-self.log_gamma + 0.5 * torch.log(var_eps)).sum()
        return x, log_det.expand(y.shape[0])


def std_normal_log_prob(z):
    return -0.5 * (z ** 2).sum(1) - 0.5 * z.shape[1] * LOG_2PI


class RealNVP(nn.Module):
    def __init__(self, hidden=64, n_couplings=8, dim=2):
        super().__init__()
        layers = []
        for i in range(n_couplings):
            layers.append(AffineCoupling(i % 2, hidden))
            if i != n_couplings - 1:
                layers.append(BatchNormBijector(dim))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        """data -> latent; returns z and the summed forward log-det."""
        log_det = torch.zeros(x.shape[0], dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def log_prob(self, x):
        z, log_det = self(x)
        return std_normal_log_prob(z) + log_det

    def inverse(self, z):
        log_det = torch.zeros(z.shape[0], dtype=z.dtype)
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            log_det = log_det + ld
        return z, log_det


def run_density(name, steps, hidden=64, batch=512, n_test=20000, seed=0, test_seed=1, log=print):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RealNVP(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    t0 = time.perf_counter()
    loss = float("nan")
    for step in range(steps):
        x = sample_dataset(name, batch, rng)
        loss_t = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss_t.backward()
        opt.step()
        if (step + 1) % max(1, steps // 5) == 0 or step + 1 == steps:
            loss = loss_t.item()
            log(f"  [{name}] step {step + 1}/{steps} train loss {loss:.4f}")
    wall = time.perf_counter() - t0
    model.eval()
    test = sample_dataset(name, n_test, np.random.default_rng(test_seed))
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    return {"dataset": name, "test_nll": nll, "final_train_loss": loss, "steps": steps,
            "batch": batch, "hidden": hidden, "n_test": int(test.shape[0]), "wall_s": wall,
            "ms_per_step": 1000 * wall / max(steps, 1)}


# ----------------------------------------------------------------------------------------------
# Energies and the planar VI model.
# ----------------------------------------------------------------------------------------------
def wall(z):
    return 0.5 * (F.relu(z[:, 0].abs() - 4) / 0.2) ** 2


def energy(name, z):
    """U(z) + W(z) for z [n, 2] (torch, any float dtype)."""
    z1, z2 = z[:, 0], z[:, 1]
    w1 = torch.sin(2 * math.pi * z1 / 4)
    if name == "U1":
        r = torch.sqrt((z ** 2).sum(1))
        u = 0.5 * ((r - 2) / 0.4) ** 2 - torch.logsumexp(
            torch.stack([-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2]), 0)
    elif name == "U2":
        u = 0.5 * ((z2 - w1) / 0.4) ** 2
    elif name == "U3":
        w2 = 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
        u = -torch.logsumexp(torch.stack([-0.5 * ((z2 - w1) / 0.35) ** 2,
                                          -0.5 * ((z2 - w1 + w2) / 0.35) ** 2]), 0)
    elif name == "U4":
        w3 = 3 * torch.sigmoid((z1 - 1) / 0.3)
        u = -torch.logsumexp(torch.stack([-0.5 * ((z2 - w1) / 0.4) ** 2,
                                          -0.5 * ((z2 - w1 + w3) / 0.35) ** 2]), 0)
    else:
        raise ValueError(f"unknown energy {name}")
    return u + wall(z)


LOGZ_BOX = {"U1": ((-6.0, 6.0), (-6.0, 6.0)), "U2": ((-6.0, 6.0), (-8.0, 6.0)),
            "U3": ((-6.0, 6.0), (-8.0, 6.0)), "U4": ((-6.0, 6.0), (-8.0, 6.0))}


def log_z(name, box=None, n=1000, with_wall=True):
    """log of the integral of exp(-U-W) by the midpoint rule on an n x n grid (float64)."""
    (a1, b1), (a2, b2) = box or LOGZ_BOX[name]
    h1, h2 = (b1 - a1) / n, (b2 - a2) / n
    g1 = a1 + h1 * (torch.arange(n, dtype=torch.float64) + 0.5)
    g2 = a2 + h2 * (torch.arange(n, dtype=torch.float64) + 0.5)
    zz = torch.stack(torch.meshgrid(g1, g2, indexing="ij"), -1).reshape(-1, 2)
    e = energy(name, zz)
    if not with_wall:
        e = e - wall(zz)
    return (torch.logsumexp(-e, 0) + math.log(h1 * h2)).item()


class Planar(nn.Module):
    def __init__(self, dim=2):
        super().__init__()
        bound = 1 / math.sqrt(dim)
        self.w = nn.Parameter(torch.empty(dim).uniform_(-bound, bound))
        self.u = nn.Parameter(torch.empty(dim).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.empty(1).uniform_(-bound, bound))

    def u_hat(self):
        wu = (self.w * self.u).sum()
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w ** 2).sum()

    def forward(self, x):
        uh = self.u_hat()
        h = torch.tanh(x @ self.w + self.b)
        y = x + h[:, None] * uh
        log_det = torch.log(torch.abs(1 + (1 - h ** 2) * (self.w * uh).sum()))
        return y, log_det


class PlanarFlow(nn.Module):
    def __init__(self, n_layers=32, dim=2):
        super().__init__()
        self.layers = nn.ModuleList([Planar(dim) for _ in range(n_layers)])

    def forward(self, z0):
        """base -> target; returns x and log q(x) = log N(z0) - sum log|det|."""
        log_q = std_normal_log_prob(z0)
        x = z0
        for layer in self.layers:
            x, ld = layer(x)
            log_q = log_q - ld
        return x, log_q


def run_vi(name, steps, n_layers=32, batch=512, n_eval=100000, seed=0, eval_seed=1, log=print):
    torch.manual_seed(seed)
    model = PlanarFlow(n_layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    loss = float("nan")
    for step in range(steps):
        z0 = torch.randn(batch, 2)
        x, log_q = model(z0)
        loss_t = (log_q + energy(name, x)).mean()
        opt.zero_grad(set_to_none=True)
        loss_t.backward()
        opt.step()
        if (step + 1) % max(1, steps // 5) == 0 or step + 1 == steps:
            loss = loss_t.item()
            log(f"  [{name}] step {step + 1}/{steps} loss {loss:.4f}")
    wall_s = time.perf_counter() - t0
    lz = log_z(name)
    gen = torch.Generator().manual_seed(eval_seed)
    with torch.no_grad():
        z0 = torch.randn(n_eval, 2, generator=gen)
        x, log_q = model(z0)
        terms = (log_q + energy(name, x)).double()
    kl = terms.mean().item() + lz
    se = terms.std().item() / math.sqrt(n_eval)
    (a1, b1), (a2, b2) = LOGZ_BOX[name]
    return {"energy": name, "kl": kl, "kl_stderr": se, "log_z": lz,
            "log_z_box": {"z1": [a1, b1], "z2": [a2, b2], "grid": [1000, 1000]},
            "final_train_loss": loss, "steps": steps, "batch": batch, "layers": n_layers,
            "n_eval": n_eval, "wall_s": wall_s, "ms_per_step": 1000 * wall_s / max(steps, 1)}


# ----------------------------------------------------------------------------------------------
# Speed twins for bench/compare_pytorch.py (no quality protocol): the neural spline flow with
# coupling layers (NSF-C) and the masked autoregressive flow (MAF) of bench/bench_flows.cpp.
# ----------------------------------------------------------------------------------------------
def half_mask(dim, parity):
    """flowgrad's AffineCoupling::half_mask: column j is fixed (1) iff (j < dim // 2) == (parity even)."""
    return [1 if (j < dim // 2) == (parity % 2 == 0) else 0 for j in range(dim)]


def rq_spline(x, params, bins=8, bound=4.0, inverse=False, min_width=1e-3, min_height=1e-3,
              min_derivative=1e-3):
    """Monotone rational-quadratic spline (Durkan et al. 2019), elementwise on x [n, m], identity
    outside [-bound, bound]. params [n, m (3K - 1)]: for column j, columns [j (3K - 1), (j + 1)(3K - 1))
    hold K width logits, K height logits, K - 1 interior derivative logits (docs/design.md §4).
    Returns (y, log dy/dx), each [n, m]; with inverse=True, (x, log dx/dy) of the inverse map."""
    k_bins = bins
    n, m = x.shape
    p = params.reshape(n, m, 3 * k_bins - 1)
    inside = (x >= -bound) & (x <= bound)
    v = x.clamp(-bound, bound)  # the spline's own input; the identity replaces it outside

    def knots(logits, minimum):
        size = minimum + (1 - minimum * k_bins) * torch.softmax(logits, -1)
        c = -bound + 2 * bound * torch.cumsum(size, -1)
        edge = torch.full_like(c[..., :1], bound)
        return torch.cat([-edge, c[..., :-1], edge], -1)  # [n, m, K + 1], the ends exactly -B, B

    cx = knots(p[..., :k_bins], min_width)
    cy = knots(p[..., k_bins:2 * k_bins], min_height)
    one = torch.ones_like(p[..., :1])
    d = torch.cat([one, min_derivative + F.softplus(p[..., 2 * k_bins:]), one], -1)
    # Bin k: c_k <= v < c_{k+1}, the last knot counted as +inf (v = B lies in bin K - 1).
    c = cy if inverse else cx
    k = torch.searchsorted(c[..., :k_bins].contiguous(), v[..., None], right=True) - 1
    k = k.clamp(0, k_bins - 1)

    def at(t, idx):
        return t.gather(-1, idx)[..., 0]

    xk, yk, dk, dk1 = at(cx, k), at(cy, k), at(d, k), at(d, k + 1)
    wk = at(cx, k + 1) - xk
    hk = at(cy, k + 1) - yk
    s = hk / wk
    if inverse:
        dy = v - yk
        e = dk + dk1 - 2 * s
        a = hk * (s - dk) + dy * e
        b = hk * dk - dy * e
        cc = -s * dy
        xi = 2 * cc / (-b - torch.sqrt((b * b - 4 * a * cc).clamp(min=0)))
        out = xk + xi * wk
    else:
        xi = (v - xk) / wk
    t = xi * (1 - xi)
    den = s + (dk1 + dk - 2 * s) * t
    log_d = (2 * torch.log(s) + torch.log(dk1 * xi * xi + 2 * s * t + dk * (1 - xi) ** 2)
             - 2 * torch.log(den))
    if inverse:
        log_d = -log_d
    else:
        out = yk + hk * (s * xi * xi + dk * t) / den
    return torch.where(inside, out, x), torch.where(inside, log_d, torch.zeros_like(log_d))


class SplineCoupling(nn.Module):
    """NSF-C coupling: mask[j] = 1 passes column j (x1) to the conditioner unchanged; every other
    column goes through its own spline, 3K - 1 numbers per column from an MLP
    |x1| -> H -> H -> |x2| (3K - 1) (ReLU, last layer zero) whose width and height logits are
    multiplied by 1/sqrt(H). The output keeps x's column order."""

    def __init__(self, mask, bins=8, bound=4.0, hidden=64):
        super().__init__()
        self.bins, self.bound = bins, bound
        fixed = [j for j, keep in enumerate(mask) if keep]
        changed = [j for j, keep in enumerate(mask) if not keep]
        assert fixed and changed, "the mask must fix some columns and change others"
        self.register_buffer("fixed", torch.tensor(fixed))
        self.register_buffer("changed", torch.tensor(changed))
        # Column c of the output is column order[c] of [x1, y2].
        self.register_buffer("order", torch.argsort(torch.tensor(fixed + changed)))
        per = 3 * bins - 1
        self.net = _mlp(len(fixed), hidden, len(changed) * per)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        scale = torch.ones(per)
        scale[:2 * bins] = 1 / math.sqrt(hidden)
        self.register_buffer("logit_scale", scale.repeat(len(changed)))

    def _run(self, v, inverse):
        v1 = v.index_select(1, self.fixed)
        params = self.net(v1) * self.logit_scale
        y2, log_d = rq_spline(v.index_select(1, self.changed), params, self.bins, self.bound,
                              inverse=inverse)
        return torch.cat([v1, y2], 1).index_select(1, self.order), log_d.sum(1)

    def forward(self, x):
        return self._run(x, False)

    def inverse(self, y):
        return self._run(y, True)


class MaskedLinear(nn.Linear):
    """nn.Linear whose weight is multiplied by a fixed 0/1 mask [out, in] on every call."""

    def __init__(self, d_in, d_out, mask):
        super().__init__(d_in, d_out)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """MADE with inputs of degree 1..d, hidden unit k of degree 1 + (k mod max(d - 1, 1)), tanh after
    each hidden layer, 2 outputs per input laid out dimension-major (columns 2i, 2i + 1 have degree
    i + 1); hidden masks deg_out >= deg_in, output mask deg_out > deg_in; the last layer zero."""

    def __init__(self, dim, hidden=50, hidden_layers=2):
        super().__init__()
        deg_in = torch.arange(1, dim + 1)
        deg_h = 1 + torch.arange(hidden) % max(dim - 1, 1)
        deg_out = torch.arange(1, dim + 1).repeat_interleave(2)
        layers = [MaskedLinear(dim, hidden, deg_h[:, None] >= deg_in[None, :]), nn.Tanh()]
        for _ in range(hidden_layers - 1):
            layers += [MaskedLinear(hidden, hidden, deg_h[:, None] >= deg_h[None, :]), nn.Tanh()]
        layers.append(MaskedLinear(hidden, 2 * dim, deg_out[:, None] > deg_h[None, :]))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class MAFLayer(nn.Module):
    """data -> latent in one MADE pass: s = 3 tanh(a / 3), z = x exp(s) + t, log|det| = sum(s);
    the inverse takes d passes, each recomputing t and s from the current x."""

    def __init__(self, dim, hidden=50):
        super().__init__()
        self.made = MADE(dim, hidden)

    def _shift_log_scale(self, x):
        out = self.made(x)
        return out[:, 0::2], 3 * torch.tanh(out[:, 1::2] / 3)

    def forward(self, x):
        t, s = self._shift_log_scale(x)
        return x * torch.exp(s) + t, s.sum(1)

    def inverse(self, z):
        x = torch.zeros_like(z)
        for _ in range(z.shape[1]):
            t, s = self._shift_log_scale(x)
            x = (z - t) * torch.exp(-s)
        return x, -s.sum(1)  # the last pass saw every x_j it depends on


class Permutation(nn.Module):
    def __init__(self, order):
        super().__init__()
        self.register_buffer("order", order)
        self.register_buffer("inverse_order", torch.argsort(order))

    def forward(self, x):
        return x.index_select(1, self.order), x.new_zeros(x.shape[0])

    def inverse(self, y):
        return y.index_select(1, self.inverse_order), y.new_zeros(y.shape[0])


class FlowChain(nn.Module):
    """Layers applied in order from data to latent; each returns (output, log|det|) per sample."""

    def forward(self, x):
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def log_prob(self, x):
        z, log_det = self(x)
        return std_normal_log_prob(z) + log_det

    def inverse(self, z):
        log_det = z.new_zeros(z.shape[0])
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            log_det = log_det + ld
        return z, log_det


class NSF(FlowChain):
    """NSF-C: couplings alternate half_mask(d, i % 2); K bins on [-B, B], conditioner H x 2."""

    def __init__(self, dim, n_couplings=8, bins=8, bound=4.0, hidden=64):
        super().__init__()
        self.layers = nn.ModuleList([SplineCoupling(half_mask(dim, i % 2), bins, bound, hidden)
                                     for i in range(n_couplings)])


class MAF(FlowChain):
    """n_layers MAF layers with a fixed random permutation of the columns between consecutive ones
    (from a generator of its own, seeded `seed`, so torch's global stream is left alone)."""

    def __init__(self, dim, n_layers=5, hidden=50, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        layers = []
        for i in range(n_layers):
            if i:
                layers.append(Permutation(torch.randperm(dim, generator=gen)))
            layers.append(MAFLayer(dim, hidden))
        self.layers = nn.ModuleList(layers)


# ----------------------------------------------------------------------------------------------
# Self test.
# ----------------------------------------------------------------------------------------------
def _jac_logdet(fn, x):
    """log|det J| of a per-sample map fn: [1, d] -> [1, d] at every row of x (float64)."""
    out = []
    for row in x:
        j = torch.autograd.functional.jacobian(lambda v: fn(v[None])[0], row)
        out.append(torch.linalg.slogdet(j)[1])
    return torch.stack(out)


def _perturb(model, scale):
    """Move every parameter (the zero last layers too) by scale * N(0, 1), so that checks do not
    run on the identity-like starting point."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


def _selftest_nsf_maf(check):
    """The speed twins NSF and MAF (default dtype float64 here)."""
    # The spline alone: derivative, end knots, tails, inverse.
    k_bins, bound = 8, 4.0
    x = torch.tensor([[-6.0, -4.0, -3.99, -1.3, 0.0, 0.7, 2.2, 3.999, 4.0, 5.5]]).repeat(3, 1)
    x[1:] += 0.37 * torch.randn(2, x.shape[1])
    params = 2 * torch.randn(x.shape[0], x.shape[1] * (3 * k_bins - 1))
    xg = x.clone().requires_grad_(True)
    y, log_d = rq_spline(xg, params, k_bins, bound)
    (grad,) = torch.autograd.grad(y.sum(), xg)  # elementwise map: the diagonal of its Jacobian
    check("spline log-derivative vs autograd", (log_d - torch.log(grad)).abs().max(), 1e-10)
    check("spline log-derivative finite everywhere", 0.0 if bool(torch.isfinite(log_d).all()) else 1.0,
          0.0)
    ends = rq_spline(torch.tensor([[-bound, bound]]), params[:1, :2 * (3 * k_bins - 1)], k_bins, bound)[0]
    check("spline maps -B, B to -B, B", (ends - torch.tensor([[-bound, bound]])).abs().max(), 1e-12)
    outside = x.abs() > bound
    check("spline is the identity (log-derivative 0) outside [-B, B]",
          max((y - x)[outside].abs().max().item(), log_d[outside].abs().max().item()), 0.0)
    xs = torch.linspace(-bound, bound, 2001)[:, None].repeat(1, 2)
    ys = rq_spline(xs, params[:1].expand(2001, -1)[:, :2 * (3 * k_bins - 1)], k_bins, bound)[0]
    check("spline strictly increasing on a 2001-point grid", max(0.0, -(ys[1:] - ys[:-1]).min().item()),
          0.0)
    with torch.no_grad():
        xr, log_di = rq_spline(y.detach(), params, k_bins, bound, inverse=True)
    check("spline inverse round trip", (xr - x).abs().max(), 1e-10)
    check("spline inverse log-derivative = -forward", (log_di + log_d.detach()).abs().max(), 1e-10)

    # Spline couplings: odd and even d, both parities; then whole NSFs.
    for d in (2, 5):
        for parity in (0, 1):
            mask = half_mask(d, parity)
            c = SplineCoupling(mask, hidden=16)
            _perturb(c, 0.5)
            pts = 2.5 * torch.randn(6, d)
            pts[0, :] = torch.tensor([4.5, -5.0, 3.0, -4.2, 0.5])[:d]  # tails in several columns
            y, ld = c(pts)
            fixed = torch.tensor(mask, dtype=torch.bool)
            check(f"spline coupling d={d} parity {parity} mask {mask} keeps fixed columns",
                  (y[:, fixed] - pts[:, fixed]).abs().max(), 0.0)
            check(f"spline coupling d={d} parity {parity} log-det vs autograd Jacobian",
                  (ld - _jac_logdet(lambda v: c(v)[0], pts)).abs().max(), 1e-10)
            with torch.no_grad():
                xr, ldi = c.inverse(y)
            check(f"spline coupling d={d} parity {parity} inverse round trip",
                  (xr - pts).abs().max(), 1e-10)
            check(f"spline coupling d={d} parity {parity} inverse log-det = -forward",
                  (ldi + ld).abs().max(), 1e-10)
    # Whole NSFs moved less than single couplings: at 0.3 the d = 8 flow's log-det reaches ~55 and
    # the round trip amplifies each coupling's 1e-12 error to 1e-5 (conditioning, not a bug).
    for d in (2, 3, 8):
        model = NSF(d)
        _perturb(model, 0.1)
        pts = 2 * torch.randn(5, d)
        pts[0, 0] = 4.7
        with torch.no_grad():
            z, ld = model(pts)
        check(f"NSF d={d} log-det vs autograd Jacobian",
              (ld - _jac_logdet(lambda v: model(v)[0], pts)).abs().max(), 1e-9)
        with torch.no_grad():
            xr, ldi = model.inverse(z)
        check(f"NSF d={d} inverse round trip", (xr - pts).abs().max(), 1e-9)
        check(f"NSF d={d} inverse log-det = -forward", (ldi + ld).abs().max(), 1e-9)
    model = NSF(2)
    with torch.no_grad():
        n = 600
        g = -12 + 24 * (torch.arange(n) + 0.5) / n
        grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        _perturb(model, 0.1)
        mass = torch.exp(model.log_prob(grid)).sum().item() * (24 / n) ** 2
    check("NSF d=2 density integrates to 1 on [-12,12]^2", abs(mass - 1), 2e-3)

    # MADE: output columns 2i, 2i + 1 depend on x_0..x_{i-1} only.
    for d in (2, 5):
        made = MADE(d)
        _perturb(made, 0.5)
        j = torch.autograd.functional.jacobian(lambda v: made(v[None])[0], torch.randn(d))  # [2d, d]
        allowed = (torch.arange(2 * d)[:, None] // 2) > torch.arange(d)[None, :]
        check(f"MADE d={d} autoregressive (no output depends on x_j, j >= its dimension)",
              j[~allowed].abs().max(), 0.0)
        check(f"MADE d={d} output i depends on every x_j, j < i (random weights)",
              0.0 if j[allowed].abs().min() > 0 else 1.0, 0.0)
    # MAF layers and whole MAFs.
    for d in (2, 5, 8):
        layer = MAFLayer(d)
        _perturb(layer, 0.5)
        pts = 2 * torch.randn(6, d)
        z, ld = layer(pts)
        check(f"MAF layer d={d} log-det vs autograd Jacobian",
              (ld - _jac_logdet(lambda v: layer(v)[0], pts)).abs().max(), 1e-10)
        with torch.no_grad():
            xr, ldi = layer.inverse(z)
        check(f"MAF layer d={d} inverse ({d} passes) round trip", (xr - pts).abs().max(), 1e-10)
        check(f"MAF layer d={d} inverse log-det = -forward", (ldi + ld).abs().max(), 1e-10)
    for d in (2, 8):
        model = MAF(d)
        _perturb(model, 0.3)
        pts = 2 * torch.randn(6, d)
        with torch.no_grad():
            z, ld = model(pts)
        check(f"MAF d={d} log-det vs autograd Jacobian",
              (ld - _jac_logdet(lambda v: model(v)[0], pts)).abs().max(), 1e-9)
        with torch.no_grad():
            xr, ldi = model.inverse(z)
            x_new, _ = model.inverse(torch.randn(100, d))
            back = model(x_new)[0]
            again = model.inverse(back)[0]
        check(f"MAF d={d} inverse round trip", (xr - pts).abs().max(), 1e-9)
        check(f"MAF d={d} inverse log-det = -forward", (ldi + ld).abs().max(), 1e-9)
        check(f"MAF d={d} samples: inverse(forward(x)) = x", (again - x_new).abs().max(), 1e-9)
        perms = [m.order.tolist() for m in model.layers if isinstance(m, Permutation)]
        check(f"MAF d={d} has 4 permutations between 5 MAF layers",
              0.0 if len(perms) == 4 and sum(isinstance(m, MAFLayer) for m in model.layers) == 5
              and all(sorted(p) == list(range(d)) for p in perms) else 1.0, 0.0)


def selftest():
    torch.manual_seed(123)
    results = []

    def check(label, err, tol):
        ok = bool(err <= tol)
        results.append({"check": label, "error": float(err), "tol": tol, "ok": ok})
        print(f"  {'PASS' if ok else 'FAIL'}  {label}: {err:.3g} (tol {tol:g})")

    torch.set_default_dtype(torch.float64)
    try:
        pts = torch.randn(6, 2) * 2

        # Batch norm, eval mode: log-det and inverse; train mode: statistics and running update.
        bn = BatchNormBijector(2)
        with torch.no_grad():
            bn.log_gamma.copy_(torch.tensor([0.3, -0.7]))
            bn.beta.copy_(torch.tensor([0.5, -1.0]))
            bn.running_mean.copy_(torch.tensor([0.2, -0.4]))
            bn.running_var.copy_(torch.tensor([2.5, 0.3]))
        bn.eval()
        y, ld = bn(pts)
        check("batchnorm eval log-det vs autograd Jacobian",
              (ld - _jac_logdet(lambda v: bn(v)[0], pts)).abs().max(), 1e-10)
        check("batchnorm eval inverse round trip", (bn.inverse(y)[0] - pts).abs().max(), 1e-12)
        bn.train()
        xb = torch.randn(1000, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
        rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
        yb, ldb = bn(xb)
        var_b = xb.var(0, unbiased=False)
        ref = (yb - bn.beta) * torch.exp(-bn.log_gamma)
        check("batchnorm train output standardised (mean 0, var ~1)",
              max(ref.mean(0).abs().max().item(), (ref.var(0, unbiased=False) - 1).abs().max().item()),
              1e-4)
        check("batchnorm train log-det formula",
              (ldb[0] - (bn.log_gamma - 0.5 * torch.log(var_b + 1e-5)).sum()).abs(), 1e-12)
        check("batchnorm running update (momentum 0.1, biased var)",
              max((bn.running_mean - (0.9 * rm0 + 0.1 * xb.mean(0))).abs().max().item(),
                  (bn.running_var - (0.9 * rv0 + 0.1 * var_b)).abs().max().item()), 1e-12)

        # Affine coupling, both parities.
        for parity in (0, 1):
            c = AffineCoupling(parity, 16)
            y, ld = c(pts)
            fixed = 0 if parity == 0 else 1
            check(f"coupling parity {parity} keeps column {fixed}",
                  (y[:, fixed] - pts[:, fixed]).abs().max(), 0.0)
            check(f"coupling parity {parity} log-det vs autograd Jacobian",
                  (ld - _jac_logdet(lambda v: c(v)[0], pts)).abs().max(), 1e-10)
            xr, ldi = c.inverse(y)
            check(f"coupling parity {parity} inverse round trip", (xr - pts).abs().max(), 1e-12)
            check(f"coupling parity {parity} inverse log-det = -forward", (ldi + ld).abs().max(),
                  1e-12)

        # Whole RealNVP in eval mode after a few training steps (running stats moved).
        model = RealNVP(32)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(0)
        for _ in range(30):
            loss = -model.log_prob(sample_dataset("moons", 256, rng).double()).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            z, ld = model(pts)
        check("RealNVP eval log-det vs autograd Jacobian",
              (ld - _jac_logdet(lambda v: model(v)[0], pts)).abs().max(), 1e-9)
        with torch.no_grad():
            check("RealNVP eval inverse round trip", (model.inverse(z)[0] - pts).abs().max(), 1e-9)
            n = 600
            g = -12 + 24 * (torch.arange(n) + 0.5) / n
            grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
            mass = torch.exp(model.log_prob(grid)).sum().item() * (24 / n) ** 2
        check("RealNVP eval density integrates to 1 on [-12,12]^2", abs(mass - 1), 2e-3)

        # Planar layers: log-det vs Jacobian, invertibility condition w.u_hat >= -1.
        flow = PlanarFlow(4)
        with torch.no_grad():
            for layer in flow.layers:  # make some layers strongly contracting
                layer.u.copy_(-3 * layer.w)
        for i, layer in enumerate(flow.layers):
            _, ld = layer(pts)
            check(f"planar layer {i} log-det vs autograd Jacobian",
                  (ld - _jac_logdet(lambda v: layer(v)[0], pts)).abs().max(), 1e-10)
            check(f"planar layer {i} w.u_hat >= -1",
                  max(0.0, -1 - (layer.w * layer.u_hat()).sum().item()), 0.0)
        x, log_q = flow(pts)
        ref = std_normal_log_prob(pts) - _jac_logdet(lambda v: flow(v)[0], pts)
        check("planar flow log q vs autograd Jacobian", (log_q - ref).abs().max(), 1e-10)

        # Energies: the wall barely moves U1's log Z; the boxes hold the mass.
        check("U1 log Z with vs without wall", abs(log_z("U1") - log_z("U1", with_wall=False)),
              1e-6)
        for name in ENERGIES:
            (a1, b1), (a2, b2) = LOGZ_BOX[name]
            wide = ((a1 - 2, b1 + 2), (a2 - 3, b2 + 3))
            check(f"{name} log Z box {LOGZ_BOX[name]} vs wider {wide}",
                  abs(log_z(name) - log_z(name, box=wide, n=1400)), 1e-4)
        check("U1 log Z grid 1000 vs 2000", abs(log_z("U1") - log_z("U1", n=2000)), 1e-6)
        # exp(-U2..U4) integrate over z2 in closed form (Gaussians, no z1 dependence), and
        # int exp(-W) dz1 = 8 + 0.2 sqrt(2 pi): closed-form log Z.
        s2pi = math.sqrt(2 * math.pi)
        wall_int = 8 + 0.2 * s2pi
        for name, width in (("U2", 0.4), ("U3", 0.7), ("U4", 0.75)):
            check(f"{name} log Z vs closed form", abs(log_z(name) - math.log(wall_int * width * s2pi)),
                  1e-6)

        _selftest_nsf_maf(check)
    finally:
        torch.set_default_dtype(torch.float32)

    # Datasets: shapes, dtype, and a few exact properties.
    rng = np.random.default_rng(0)
    for name in DATASETS:
        x = sample_dataset(name, 1000, rng)
        expect = 1000
        ok = x.shape == (expect, 2) and x.dtype == torch.float32 and bool(torch.isfinite(x).all())
        check(f"dataset {name} shape/dtype/finite", 0.0 if ok else 1.0, 0.0)
    cb = sample_dataset("checkerboard", 100000, rng).double()
    cell = (torch.floor(cb[:, 0] / 2) + torch.floor(cb[:, 1] / 2)) % 2
    inside = (cb.abs() <= 4).all(1)
    check("checkerboard points on even squares inside [-4,4]^2",
          (cell != 0).double().mean().item() + (~inside).double().mean().item(), 0.0)
    g8 = sample_dataset("8gaussians", 100000, rng).double()
    check("8gaussians radius mean ~ 4/1.414", abs(g8.norm(dim=1).mean().item() - 4 / 1.414), 0.05)

    n_fail = sum(not r["ok"] for r in results)
    print(f"selftest: {len(results) - n_fail}/{len(results)} checks passed")
    return results, n_fail


# ----------------------------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["density", "vi", "all"], default="all")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--energies", default=",".join(ENERGIES))
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0, help="training seed; test/evaluation points use seed + 1")
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    p.add_argument("--selftest", action="store_true", help="run the correctness checks and exit")
    args = p.parse_args(argv)

    if args.selftest:
        _, n_fail = selftest()
        return 1 if n_fail else 0

    datasets = [d for d in args.datasets.split(",") if d]
    energies = [e for e in args.energies.split(",") if e]
    for d in datasets:
        if d not in DATASETS:
            p.error(f"unknown dataset {d} (choose from {', '.join(DATASETS)})")
    for e in energies:
        if e not in ENERGIES:
            p.error(f"unknown energy {e} (choose from {', '.join(ENERGIES)})")

    out = {"meta": {"torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version(), "threads": torch.get_num_threads(),
                    "steps": args.steps, "seed": args.seed, "command": " ".join(sys.argv)},
           "density": [], "vi": []}

    def dump():
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            tmp = args.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(out, f, indent=2)
            os.replace(tmp, args.json)

    def log(msg):
        print(msg, flush=True)

    if args.part in ("density", "all"):
        for d in datasets:
            r = run_density(d, args.steps, seed=args.seed, test_seed=args.seed + 1, log=log)
            out["density"].append(r)
            log(f"{d:>13}: test NLL {r['test_nll']:.4f} nats  wall {r['wall_s']:.1f} s  "
                f"{r['ms_per_step']:.2f} ms/step")
            dump()
    if args.part in ("vi", "all"):
        for e in energies:
            r = run_vi(e, args.steps, seed=args.seed, eval_seed=args.seed + 1, log=log)
            out["vi"].append(r)
            log(f"{e:>13}: KL {r['kl']:.4f} (+- {r['kl_stderr']:.4f})  log Z {r['log_z']:.5f}  "
                f"wall {r['wall_s']:.1f} s  {r['ms_per_step']:.2f} ms/step")
            dump()

    print("\nsummary")
    for r in out["density"]:
        print(f"  density {r['dataset']:>13}  test NLL {r['test_nll']:8.4f}  "
              f"{r['ms_per_step']:6.2f} ms/step")
    for r in out["vi"]:
        print(f"  vi      {r['energy']:>13}  KL {r['kl']:8.4f}  log Z {r['log_z']:9.5f}  "
              f"{r['ms_per_step']:6.2f} ms/step")
    dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
