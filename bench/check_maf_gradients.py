#!/usr/bin/python3
"""Are flowgrad's MAF gradients and Adam steps PyTorch's? (train_images --model maf vs the twin)

bench/grad_dump.cpp (built by hand against build/libflowgrad.a, see its header) writes, for one
preprocessed Fashion-MNIST batch x, flowgrad's weights (model.safetensors, save_flow format), the
loss -mean log p(x) and every parameter's gradient from flowgrad's tape in float32
(grads.safetensors); with --adam-steps K also K Adam steps on the same batch (each step's gradient,
the weights and both moments after). This script loads the same weights into
bench/reference_images.py's twin (with check_maf_twin.py's loader) and reports, per parameter:

  - relative L2 error ||g_flowgrad - g_torch64|| / ||g_torch64|| and the twin's own float32 error
    (the float32 noise floor), the largest |difference| and where it is;
  - the gradient at MADE's masked-out weights (must be exactly 0 in both);
  - with Adam steps: torch.optim.Adam fed flowgrad's gradients vs flowgrad's weights and moments
    after K steps (the optimizer alone), and the twin trained K steps on its own float32 gradients
    vs flowgrad's weights (gradients and optimizer together).

Run (single-threaded):

    g++-12 -std=c++20 -march=x86-64-v3 -O2 -I. bench/grad_dump.cpp \
        build/apps/libtrain_images_core.a build/libflowgrad.a -lz -lpthread -o /tmp/grad_dump
    /tmp/grad_dump /tmp/gradcmp/init --seed 0 --adam-steps 3          # fresh full-size model
    /tmp/grad_dump /tmp/gradcmp/trained --checkpoint RUN/model.safetensors --adam-steps 3
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/check_maf_gradients.py /tmp/gradcmp/init
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/check_maf_gradients.py --init-stats /tmp/gradcmp/init

Training side by side (--train): grad_dump OUT --train 300 --seed 1 runs train_images' own loop
(bit for bit its loss.csv) and records every batch; the twin then trains from the same initial
weights on the same batches. Expect the losses to agree for ~25 steps and then to part (float32
rounding amplified by the training's chaos), so compare several runs (--perturb 1e-6
--batch-seed J gives each its own start), not one. A whole run, e.g. train_images' 10 epochs:

    nice -n 10 /tmp/grad_dump /tmp/gradcmp/full_s1 --train 2340 --seed 1  # writes 1.9 GB
    OMP_NUM_THREADS=1 nice -n 10 /usr/bin/python3 bench/check_maf_gradients.py --train \
        --seed 1 /tmp/gradcmp/full_s1 > /tmp/gradcmp/full_s1_twin.log

With --seed S it then reports test bits/dim (reference_images --seed S's evaluation: eval mode,
all 10,000 test images, its test noise, the preprocessing's Jacobian) of the twin's final weights
and of flowgrad's (final.safetensors), the mean training loss of the last 200 steps, and loss
spikes (per-batch bits/dim, i.e. the loss less the batch's own preprocessing Jacobian, above the
previous 50 steps' median by 2x or by 0.1 ... 1 bits/dim). It writes OUT/twin_losses.csv (both
losses per step, and the batch's Jacobian) and the twin's final state_dict, OUT/twin_final.pt.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import math
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_maf_twin as cmt  # noqa: E402
import reference_images as ri  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def twin_of(model_path):
    meta, tensors = cmt.read_safetensors(model_path)
    flow, info = cmt.build_twin(meta)
    notes = cmt.load_into(flow, info, tensors)
    return flow, info, notes


def named_params(flow):
    """[(flowgrad name, twin parameter, mask or None)]"""
    out = []
    mods = dict(flow.named_modules())
    for name, p in flow.named_parameters():
        fg = cmt.flowgrad_name(name)
        owner = mods[name.rsplit(".", 1)[0]]
        mask = owner.mask if name.endswith(".weight") and isinstance(owner, ri.MaskedLinear) else None
        out.append((fg, p, mask))
    return out


def gradients(flow, x):
    flow.zero_grad()
    loss = -flow.log_prob(x).mean()
    loss.backward()
    return loss.item(), {fg: p.grad.detach().double().numpy().copy() for fg, p, _ in named_params(flow)}


def rel(a, b):
    n = np.linalg.norm(b)
    return np.linalg.norm(a - b) / n if n > 0 else (0.0 if np.linalg.norm(a) == 0 else np.inf)


def compare_gradients(flow, g, worst_allowed):
    x = torch.from_numpy(np.array(g["x"], dtype=np.float32))
    f64 = copy.deepcopy(flow).double()
    loss64, g64 = gradients(f64, x.double())
    loss32, g32 = gradients(flow, x)
    fg_loss = float(g["loss"][0])
    print(f"loss: flowgrad {fg_loss:.6f}, twin float32 {loss32:.6f}, float64 {loss64:.6f}")
    print(f"{'parameter':34s} {'|g64|':>10s} {'rel fg':>9s} {'rel t32':>9s} {'cos fg':>9s} "
          f"{'max|fg-64|':>10s} at        masked: fg   t32")
    bad = []
    for name, p, mask in named_params(flow):
        fg = np.asarray(g["grad." + name], dtype=np.float64)
        ref, t32 = g64[name], g32[name]
        r_fg, r_32 = rel(fg, ref), rel(t32, ref)
        cos = float((fg * ref).sum() / (np.linalg.norm(fg) * np.linalg.norm(ref) + 1e-300))
        d = np.abs(fg - ref)
        at = np.unravel_index(np.argmax(d), d.shape)
        masked = ""
        if mask is not None:
            m = mask.numpy() == 0
            masked = f"{np.abs(fg[m]).max(initial=0):.1e} {np.abs(t32[m]).max(initial=0):.1e}"
            if np.abs(fg[m]).max(initial=0) != 0:
                bad.append(f"{name}: nonzero gradient at masked weights")
        print(f"{name:34s} {np.linalg.norm(ref):10.3e} {r_fg:9.2e} {r_32:9.2e} {cos:9.6f} "
              f"{d.max():10.3e} {str(tuple(int(i) for i in at)):12s} {masked}")
        if r_fg > worst_allowed and np.linalg.norm(ref) > 0:
            bad.append(f"{name}: relative error {r_fg:.2e}")
    return bad


def compare_adam(flow, g, steps):
    """torch.optim.Adam fed flowgrad's gradients, and the twin on its own gradients, vs flowgrad."""
    x = torch.from_numpy(np.array(g["x"], dtype=np.float32))
    params = named_params(flow)
    fed = copy.deepcopy(flow)
    fed_params = named_params(fed)
    opt = torch.optim.Adam([p for _, p, _ in fed_params], lr=1e-3)
    for k in range(1, steps + 1):
        for name, p, _ in fed_params:
            p.grad = torch.from_numpy(np.array(g[f"step{k}.grad.{name}"], dtype=np.float32))
        opt.step()
    own = copy.deepcopy(flow)
    own_params = named_params(own)
    opt2 = torch.optim.Adam([p for _, p, _ in own_params], lr=1e-3)
    losses = []
    for _ in range(steps):
        opt2.zero_grad()
        loss = -own.log_prob(x).mean()
        loss.backward()
        opt2.step()
        losses.append(loss.item())
    print(f"\nAdam, {steps} steps on the same batch; twin's own losses {['%.4f' % l for l in losses]}")
    print(f"{'parameter':34s} {'|moved|':>10s} {'fed: w':>9s} {'m':>9s} {'v':>9s} {'own: w':>9s}"
          f" {'masked w':>9s}")
    worst = 0.0
    for (name, p0, mask), (_, pf, _), (_, po, _) in zip(params, fed_params, own_params):
        after = np.asarray(g["after." + name], dtype=np.float64)
        w0 = p0.detach().double().numpy()
        moved = after - w0
        st = opt.state[pf]
        r_w = rel(after - w0, pf.detach().double().numpy() - w0)
        r_m = rel(np.asarray(g["exp_avg." + name], np.float64), st["exp_avg"].double().numpy())
        r_v = rel(np.asarray(g["exp_avg_sq." + name], np.float64), st["exp_avg_sq"].double().numpy())
        r_own = rel(after - w0, po.detach().double().numpy() - w0)
        masked = ""
        if mask is not None:
            masked = f"{np.abs(after[mask.numpy() == 0]).max(initial=0):9.1e}"
        worst = max(worst, r_w)
        print(f"{name:34s} {np.linalg.norm(moved):10.3e} {r_w:9.2e} {r_m:9.2e} {r_v:9.2e} "
              f"{r_own:9.2e} {masked}")
    return worst


def init_stats(flow, info, seed=0):
    """flowgrad's fresh weights (as loaded) vs a twin built as reference_images.run builds it."""
    torch.manual_seed(seed)
    ref = ri.build("maf", info["dim"], sum(isinstance(m, ri.MaskedAffineAutoregressive)
                                           for m in flow.layers),
                   info["hidden"], info["hidden_layers"], 0, np.random.default_rng(seed))
    print(f"{'parameter':34s} {'fan_in':>6s} {'U(+-1/sqrt(in)) std':>19s} {'std fg':>9s} "
          f"{'std twin':>9s} {'max|fg|':>9s} {'max|twin|':>9s} {'kept':>7s}")
    fan_in = None
    for (name, p, mask), (_, q, _) in zip(named_params(flow), named_params(ref)):
        a, b = p.detach().numpy(), q.detach().numpy()
        kept = ""
        if mask is not None:  # a weight: its bias (next) has the same fan-in
            fan_in = a.shape[1]
            keep = mask.numpy() != 0
            a, b = a[keep], b[keep]
            kept = f"{keep.mean():7.4f}"
        print(f"{name:34s} {fan_in:6d} {1 / np.sqrt(3 * fan_in):19.5f} {a.std():9.5f} "
              f"{b.std():9.5f} {np.abs(a).max():9.5f} {np.abs(b).max():9.5f} {kept}")
    orders = [m.order.numpy() for m in flow.layers if isinstance(m, ri.Permutation)]
    first = flow.layers[0]
    print(f"chain: first layer {type(first).__name__}; {len(orders)} permutations, "
          f"fixed points {[int((o == np.arange(len(o))).sum()) for o in orders]}")


def test_bits_per_dim(flow, seed, lam=0.05, data_dir="/usr/share/datasets/fashion-mnist"):
    """reference_images.run's evaluation (--seed seed): eval mode, the 10,000 test images, numpy
    noise default_rng(seed + 1), batches of 500, the preprocessing's Jacobian included."""
    px, _ = ri.load_fashion_mnist(data_dir, "test")
    x, log_jac = ri.preprocess(px, np.random.default_rng(seed + 1).random(px.shape), lam)
    x = torch.from_numpy(x).float()
    flow.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            total += flow.log_prob(x[i:i + 500]).double().sum().item()
    nll = -total / len(x)
    return (nll - float(log_jac.mean())) / (px.shape[1] * math.log(2)), nll


def batch_log_jac(x, lam=0.05):
    """The preprocessing's mean log-Jacobian of a batch of x = logit(p) (reference_images'
    preprocess: sum_i [log(1 - 2 lam) - log p_i - log(1 - p_i)] - D log 256)."""
    x = x.astype(np.float64)
    per_pixel = math.log(1 - 2 * lam) + np.logaddexp(0, -x) + np.logaddexp(0, x) - math.log(256)
    return float(per_pixel.sum(1).mean())


def spikes(bpd, window=50, excess=(0.1, 0.25, 0.5, 1.0)):
    """Steps whose per-batch bits/dim exceeds the median of the previous `window` steps by 2x
    and by each `excess` (bits/dim). bits/dim, not the loss: the loss (logit-space nats) goes
    negative, and the batch's own Jacobian (common to both trainings) no longer adds noise."""
    if len(bpd) <= window:
        return {}
    med = np.array([np.median(bpd[k - window:k]) for k in range(window, len(bpd))])
    b = bpd[window:]
    return {"2x": int((b > 2 * med).sum()), **{f"+{e}": int((b > med + e).sum()) for e in excess},
            "max excess": float((b - med).max())}


def compare_training(flow, d, every=50, max_steps=0, seed=None):
    """The twin trained from flowgrad's initial weights on flowgrad's own batches (grad_dump
    --train): per-step losses side by side; with seed, test bits/dim of both trainings' final
    weights (reference_images' evaluation, in PyTorch)."""
    fg = np.loadtxt(os.path.join(d, "losses.csv"), delimiter=",", skiprows=1)[:, 1]
    dim = flow.layers[0].made.net[0].weight.shape[1]
    xs = np.memmap(os.path.join(d, "batches.f32"), dtype=np.float32, mode="r")
    steps = len(fg) if not max_steps else min(max_steps, len(fg))
    full = steps == len(fg)
    xs = xs.reshape(len(fg), -1, dim)[:steps]
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    flow.train()
    pt, jac = [], []
    start = time.perf_counter()
    for k in range(steps):
        x = np.array(xs[k])
        jac.append(batch_log_jac(x))
        opt.zero_grad()
        loss = -flow.log_prob(torch.from_numpy(x)).mean()
        loss.backward()
        opt.step()
        pt.append(loss.item())
        if (k + 1) % every == 0:
            a, b = fg[k + 1 - every:k + 1], np.array(pt[k + 1 - every:k + 1])
            print(f"steps {k + 2 - every:5d}-{k + 1:5d}: mean loss flowgrad {a.mean():10.3f}, twin "
                  f"{b.mean():10.3f}, twin - flowgrad {np.mean(b - a):+9.3f} "
                  f"(first step of the window: {a[0]:.4f} vs {b[0]:.4f}) "
                  f"[{time.perf_counter() - start:.0f} s]", flush=True)
    pt, fg, jac = np.array(pt), fg[:steps], np.array(jac)
    np.savetxt(os.path.join(d, "twin_losses.csv"), np.c_[np.arange(1, steps + 1), pt, fg, jac],
               delimiter=",", header="step,twin,flowgrad,batch_log_jac", comments="", fmt="%.6f")
    torch.save(flow.state_dict(), os.path.join(d, "twin_final.pt"))
    diff = np.abs(pt - fg) > 1e-3 * np.abs(fg) + 1e-3
    agree = int(np.argmax(diff)) if diff.any() else steps
    print(f"losses agree to 1e-3 relative for the first {agree} steps")
    last = min(200, steps)
    m_fg, m_pt = fg[-last:].mean(), pt[-last:].mean()
    print(f"mean training loss over the last {last} steps: flowgrad {m_fg:.3f}, twin {m_pt:.3f} "
          f"nats (twin - flowgrad {m_pt - m_fg:+.3f})")
    for name, l in (("flowgrad", fg), ("twin", pt)):
        bpd = (l - jac) / (dim * math.log(2))
        print(f"{name:8s} per-batch bits/dim: last {last} steps mean {bpd[-last:].mean():.4f}; "
              f"spikes over the previous 50 steps' median: {spikes(bpd)}")
    final = os.path.join(d, "final.safetensors")
    fg_final = None
    if full and os.path.exists(final):
        _, t = cmt.read_safetensors(final)
        for name, p, _ in named_params(flow):
            print(f"  final {name:32s} rel diff {rel(p.detach().double().numpy(), np.asarray(t[name], np.float64)):.2e}")
        fg_final, _, _ = twin_of(final)
    if seed is not None:
        bpd, nll = test_bits_per_dim(flow, seed)
        print(f"test (reference_images' evaluation, --seed {seed}): twin {bpd:.4f} bits/dim "
              f"(-log p_x {nll:.2f} nats)", flush=True)
        if fg_final is not None:
            bpd_fg, nll_fg = test_bits_per_dim(fg_final, seed)
            print(f"test, same evaluation, flowgrad's final weights: {bpd_fg:.4f} bits/dim "
                  f"(-log p_x {nll_fg:.2f} nats); twin - flowgrad {bpd - bpd_fg:+.4f}")
    return pt, fg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="grad_dump's output directory")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest relative error accepted")
    ap.add_argument("--init-stats", action="store_true",
                    help="compare the (fresh) weights' distribution with the twin's own init")
    ap.add_argument("--train", action="store_true",
                    help="dir is grad_dump --train's: train the twin on the same batches")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--seed", type=int,
                    help="--train: the run's seed; then evaluate test bits/dim as reference_images "
                         "--seed SEED does (its test noise)")
    args = ap.parse_args()
    flow, info, notes = twin_of(os.path.join(args.dir, "model.safetensors"))
    print(f"{args.dir}: maf, dim {info['dim']}, hidden {info['hidden']} x {info['hidden_layers']}")
    for n in notes:
        print("  " + n)
    if args.train:
        compare_training(flow, args.dir, max_steps=args.max_steps, seed=args.seed)
        return 0
    if args.init_stats:
        init_stats(flow, info)
        return 0
    _, g = cmt.read_safetensors(os.path.join(args.dir, "grads.safetensors"))
    bad = compare_gradients(flow, g, args.tol)
    steps = len({k.split(".")[0] for k in g if k.startswith("step")})
    if steps:
        worst = compare_adam(flow, g, steps)
        if worst > args.tol:
            bad.append(f"Adam (fed flowgrad's gradients): relative error {worst:.2e}")
    print("\n" + ("PROBLEMS:\n  " + "\n  ".join(bad) if bad else "all gradients agree"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
