#!/usr/bin/python3
"""A PyTorch anchor for `ipsweep bench fingerprint` (issue 16): the same
IPGuard algorithm (docs/fingerprint.md "Finding a point") written as a plain
PyTorch loop, to tell how far ipsweep's engine is from what a mainstream
framework does on the same machine with the same work.

Same as ipsweep: the small-p network (docs/models.md) in eval mode, its
weights from an ipsweep checkpoint (h5py) or random ones of the same shapes;
K points in one batch; per point the loss
    ReLU(Z_i - Z_j + k) + ReLU(max_{t != i,j} Z_t - Z_i),
a point frozen when its loss is exactly 0 (its iterations recorded), one
Adam state per point (betas 0.9/0.999, eps 1e-8, PyTorch's form, as
core/nn/optim.c), clipping to the valid input range after every step,
max_iter steps at most; only the active points are forwarded.

Not the same: the seed images (ipsweep permutes the training set with
Philox; here numpy's generator keyed by --seed), hence the random targets.
Compare work rates (point_iters_per_s) and, with --target least-likely and
the same K/k/max_iter, whole-task seconds of similar work.

Prints one key=value line like the bench, e.g.
    /usr/bin/python3 scripts/fingerprint_anchor.py --model owner.h5 \
        --data /usr/share/datasets/fashion-mnist --points 200 --iters 1000 --k 20 --target least-likely
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def find(dirname, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    sys.exit("fingerprint_anchor: no %s in %s" % (stem, dirname))


class SmallP(torch.nn.Module):
    """small-p (docs/models.md): 3 x (conv3x3 pad 1, no bias + batch norm + ReLU + max-pool 2x2), fc."""

    def __init__(self, width=32, in_c=1, classes=10):
        super().__init__()
        w = [in_c, width, 2 * width, 4 * width]
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(w[i], w[i + 1], 3, padding=1, bias=False) for i in range(3))
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm2d(w[i + 1], eps=1e-5) for i in range(3))
        self.fc = torch.nn.Linear(4 * width * 3 * 3, classes)

    def forward(self, x):
        for c, n in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(n(c(x))), 2)
        return self.fc(torch.flatten(x, 1))


def load_checkpoint(model, path):
    import h5py

    with h5py.File(path, "r") as f:
        arch = f.attrs["arch"]
        arch = arch.decode() if isinstance(arch, bytes) else str(arch)
        if arch != "small-p" or str(f.attrs["scheme"]) not in ("baseline", "b'baseline'"):
            sys.exit("fingerprint_anchor: a baseline small-p checkpoint is needed (got %s)" % arch)
        with torch.no_grad():
            for i in range(3):
                model.convs[i].weight.copy_(torch.from_numpy(f["params/block%d.conv/weight" % i][()]))
                model.norms[i].weight.copy_(torch.from_numpy(f["params/block%d.norm/weight" % i][()]))
                model.norms[i].bias.copy_(torch.from_numpy(f["params/block%d.norm/bias" % i][()]))
                model.norms[i].running_mean.copy_(torch.from_numpy(f["buffers/block%d.norm/running_mean" % i][()]))
                model.norms[i].running_var.copy_(torch.from_numpy(f["buffers/block%d.norm/running_var" % i][()]))
            model.fc.weight.copy_(torch.from_numpy(f["params/fc/weight"][()]))
            model.fc.bias.copy_(torch.from_numpy(f["params/fc/bias"][()]))
        return float(f.attrs["input_mean"][0]), float(f.attrs["input_std"][0])


def ipguard_loss(z, i, j, k):
    """Per-point loss (n,) for logits z (n, C), seed labels i, targets j."""
    zi = z.gather(1, i[:, None])[:, 0]
    zj = z.gather(1, j[:, None])[:, 0]
    others = z.clone()
    others.scatter_(1, i[:, None], float("-inf"))
    others.scatter_(1, j[:, None], float("-inf"))
    zt = others.max(1).values
    second = F.relu(zt - zi) if z.shape[1] > 2 else torch.zeros_like(zi)
    return F.relu(zi - zj + k) + second


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="an ipsweep small-p baseline checkpoint (default: random weights)")
    ap.add_argument("--data", help="a Fashion-MNIST IDX directory: seeds are training images (default: noise)")
    ap.add_argument("--train-limit", type=int, default=0, help="first N training images (0 = all)")
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--iters", type=int, default=100, help="max_iter")
    ap.add_argument("--k", type=float, default=1.0, help="margin")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--target", choices=["random", "least-likely"], default="random")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one per rank, as a study runs)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    model = SmallP()
    mean, std = 0.0, 1.0
    if a.model:
        mean, std = load_checkpoint(model, a.model)
    else:
        torch.manual_seed(a.seed)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)  # only the input gradient (ipsweep's backward also computes weight gradients)
    lo, hi = (0.0 - mean) / std, (1.0 - mean) / std
    owner_acc = -1.0
    if a.model and a.data:  # the first 1000 test images, as the bench: a check that the weights were read right
        ti = load_idx(find(a.data, "t10k-images-idx3-ubyte"))[:1000].astype(np.float32) / 255.0
        tl = load_idx(find(a.data, "t10k-labels-idx1-ubyte"))[:1000]
        with torch.no_grad():
            pred = model(torch.from_numpy((ti - mean) / std)[:, None]).argmax(1).numpy()
        owner_acc = float((pred == tl).mean())
    rng = np.random.default_rng(a.seed)
    K, d = a.points, 28 * 28
    if a.data:
        imgs = load_idx(find(a.data, "train-images-idx3-ubyte"))
        if a.train_limit:
            imgs = imgs[: a.train_limit]
        idx = rng.permutation(len(imgs))[np.arange(K) % len(imgs)]
        x0 = (imgs[idx].astype(np.float32) / 255.0 - mean) / std
    else:
        x0 = rng.uniform(lo, hi, size=(K, 28, 28)).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(x0)).reshape(K, 1, 28, 28).clamp_(lo, hi)
    with torch.no_grad():
        z0 = model(x)
    i = z0.argmax(1)
    if a.target == "least-likely":
        zz = z0.clone()
        zz.scatter_(1, i[:, None], float("inf"))
        j = zz.argmin(1)
    else:
        j = torch.from_numpy(rng.integers(0, 9, size=K)).long()
        j = j + (j >= i).long()
    m1, m2 = torch.zeros_like(x), torch.zeros_like(x)
    steps = torch.zeros(K)
    iters = torch.full((K,), a.iters, dtype=torch.int32)
    conv = torch.zeros(K, dtype=torch.bool)
    act = torch.arange(K)
    b1, b2, eps = 0.9, 0.999, 1e-8
    t0, c0 = time.perf_counter(), time.process_time()
    for it in range(a.iters + 1):
        xa = x[act].clone().requires_grad_(True)
        loss = ipguard_loss(model(xa), i[act], j[act], a.k)
        fin = loss.detach() == 0
        conv[act[fin]] = True
        iters[act[fin]] = it
        if it == a.iters or bool(fin.all()):
            break
        loss.sum().backward()  # per-point losses: each row's gradient is its own
        keep = ~fin
        g, rows = xa.grad[keep], act[keep]
        steps[rows] += 1
        m1[rows] = b1 * m1[rows] + (1 - b1) * g
        m2[rows] = b2 * m2[rows] + (1 - b2) * g * g
        bc1 = (1 - b1 ** steps[rows]).view(-1, 1, 1, 1)
        bc2 = (1 - b2 ** steps[rows]).view(-1, 1, 1, 1)
        x[rows] = (x[rows] - a.lr / bc1 * m1[rows] / (m2[rows].sqrt() / bc2.sqrt() + eps)).clamp_(lo, hi)
        act = rows
    t1, c1 = time.perf_counter(), time.process_time()
    sec = t1 - t0
    n = int(conv.sum())
    point_iters = int(iters.sum())  # Adam steps per point, as the bench counts them
    print(
        "anchor=fingerprint-pytorch torch=%s threads=%d points=%d max_iter=%d k=%g lr=%g init=%s target=%s "
        "owner_acc=%.4f converged=%d unconverged=%d iters_mean=%.1f seconds=%.3f cpu_seconds=%.3f e2e_seconds=%.3f points_per_s=%.2f "
        "point_iters_per_s=%.0f"
        % (torch.__version__, torch.get_num_threads(), K, a.iters, a.k, a.lr, "train" if a.data else "noise",
           a.target, owner_acc, n, K - n, float(iters.float().mean()), sec, c1 - c0, t1 - t_start, K / sec, point_iters / sec)
    )


if __name__ == "__main__":
    main()
