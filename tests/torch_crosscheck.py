#!/usr/bin/python3
"""Independent PyTorch cross-check of an ipsweep checkpoint.

Rebuilds the network named in the checkpoint's root attributes (arch, scheme,
norm) from its written definition (docs/models.md), loads every tensor from the
HDF5 file (docs/checkpoint.md), runs it in eval mode on test images normalised
with the checkpoint's input_mean/input_std, and compares its argmax predictions
with those ipsweep wrote:

    ipsweep eval --model m.h5 --data fashion-mnist:DIR --test-limit 2000 --predictions preds.txt
    /usr/bin/python3 tests/torch_crosscheck.py --ckpt m.h5 --data DIR --limit 2000 --pred preds.txt

Prints "crosscheck: N images, agree=K (xx.xx%), max |logit diff| D" (D is n/a
unless --logits gives ipsweep's logits) and exits 0 only when at least 99.9% of
the predictions agree (every disagreement is listed). Exit status 1: too many
disagreements or logit differences above --tol; 2: bad input (missing tensor,
shape mismatch, unreadable file, ...).

Supported architectures: small-p (and small-p-narrow / small-p-wide),
alexnet-p, resnet18-p; schemes baseline, v1, v2, v3; norms bn, gn.

Without ipsweep's predictions, --inputs X.f32 --logits Y.f32 compares the
logits of raw float32 inputs (N,C,H,W, already normalised) directly.
"""
import argparse
import gzip
import os
import struct
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5
MIN_AGREEMENT = 0.999


class CheckpointError(Exception):
    pass


# --------------------------------------------------------------------------
# checkpoint access

def attr_str(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
        return v.decode() if isinstance(v, bytes) else str(v)
    return str(v)


class Checkpoint:
    """Tensors of one checkpoint by their ipsweep names ("block1.conv.weight")."""

    def __init__(self, path):
        try:
            self.f = h5py.File(path, "r")
        except OSError as e:
            raise CheckpointError(f"cannot read {path}: {e}")
        a = self.f.attrs
        for key in ("format_version", "arch", "scheme", "norm", "input_shape", "classes", "input_mean", "input_std"):
            if key not in a:
                raise CheckpointError(f"{path}: missing root attribute {key}")
        if int(a["format_version"]) != 1:
            raise CheckpointError(f"{path}: format_version {int(a['format_version'])} is not supported (1 is)")
        self.path = path
        self.arch = attr_str(a["arch"])
        self.scheme = attr_str(a["scheme"])
        self.norm = attr_str(a["norm"])
        self.input_shape = tuple(int(v) for v in np.atleast_1d(a["input_shape"]))
        self.classes = int(a["classes"])
        self.mean = np.atleast_1d(np.asarray(a["input_mean"], dtype=np.float32))
        self.std = np.atleast_1d(np.asarray(a["input_std"], dtype=np.float32))
        self.passport_layers = set(self.f["passport"].keys()) if "passport" in self.f else set()
        self.used = set()

    def get(self, name, shape, where="params"):
        """The tensor <where>/<layer>/<field> for name "<layer>.<field>", checked against shape."""
        layer, field = name.rsplit(".", 1)
        key = f"{where}/{layer}/{field}"
        if key not in self.f:
            raise CheckpointError(f"{self.path}: missing /{key} (needed for {name})")
        d = self.f[key]
        if tuple(d.shape) != tuple(shape):
            raise CheckpointError(f"{self.path}: /{key} has shape {tuple(d.shape)}, the {self.arch} definition "
                                  f"expects {tuple(shape)}")
        self.used.add(key)
        return torch.from_numpy(np.asarray(d, dtype=np.float32).copy())

    def unused(self):
        names = []
        self.f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        return [n for n in names if n not in self.used and not n.endswith("/sig_bits")]


# --------------------------------------------------------------------------
# the networks

class ConvBlock:
    """conv (no bias) -> norm without affine -> gamma*x+beta [-> ReLU].

    gamma/beta are the learned block.norm.weight/bias, or for a passport layer
    the spatial means of conv(gamma_key; W) and conv(beta_key; W) with the
    layer's own stride and padding."""

    def __init__(self, ck, name, cin, cout, k, stride, pad, relu, in_hw):
        self.name, self.stride, self.pad, self.relu, self.norm = name, stride, pad, relu, ck.norm
        self.cout = cout
        self.weight = ck.get(f"{name}.conv.weight", (cout, cin, k, k))
        if ck.norm == "bn":
            self.rmean = ck.get(f"{name}.norm.running_mean", (cout,), "buffers")
            self.rvar = ck.get(f"{name}.norm.running_var", (cout,), "buffers")
            # v2/v3: the private branch's own statistics where the branches' inputs differ
            # (docs/checkpoint.md); older files have none and share the statistics
            self.prmean, self.prvar = self.rmean, self.rvar
            if f"buffers/{name}.norm/private_running_mean" in ck.f:
                self.prmean = ck.get(f"{name}.norm.private_running_mean", (cout,), "buffers")
                self.prvar = ck.get(f"{name}.norm.private_running_var", (cout,), "buffers")
        elif ck.norm != "gn":
            raise CheckpointError(f"unknown norm {ck.norm}")
        self.is_passport = name in ck.passport_layers
        if ck.scheme == "baseline" and self.is_passport:
            raise CheckpointError(f"baseline checkpoint has a passport group for {name}")
        # the learned affine: used by baseline, non-passport blocks and the public branch of v2/v3
        self.gamma = self.beta = None
        if not self.is_passport or ck.scheme in ("v2", "v3"):
            self.gamma = ck.get(f"{name}.norm.weight", (cout,))
            self.beta = ck.get(f"{name}.norm.bias", (cout,))
        if self.is_passport:
            h, w = in_hw
            self.key_gamma = ck.get(f"{name}.gamma_key", (1, cin, h, w), "passport")
            self.key_beta = ck.get(f"{name}.beta_key", (1, cin, h, w), "passport")
            self.bits = torch.from_numpy(np.asarray(ck.f[f"passport/{name}/sig_bits"], dtype=np.float32))
            sig = ck.f[f"passport/{name}"].attrs.get("signature", "")
            self.signature = attr_str(sig)

    def passport_affine(self):
        g = F.conv2d(self.key_gamma, self.weight, stride=self.stride, padding=self.pad).mean(dim=(0, 2, 3))
        b = F.conv2d(self.key_beta, self.weight, stride=self.stride, padding=self.pad).mean(dim=(0, 2, 3))
        return g, b

    def __call__(self, x, branch, scheme):
        y = F.conv2d(x, self.weight, stride=self.stride, padding=self.pad)
        if self.norm == "bn":
            private = scheme in ("v2", "v3") and branch == "private"
            rm, rv = (self.prmean, self.prvar) if private else (self.rmean, self.rvar)
            y = F.batch_norm(y, rm, rv, training=False, eps=EPS)
        else:
            y = F.group_norm(y, max(self.cout // 16, 1), eps=EPS)
        if self.is_passport and (scheme == "v1" or branch == "private"):
            g, b = self.passport_affine()
        else:
            g, b = self.gamma, self.beta
        y = y * g.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
        return F.relu(y) if self.relu else y


def out_hw(hw, k, stride, pad):
    return ((hw[0] + 2 * pad - k) // stride + 1, (hw[1] + 2 * pad - k) // stride + 1)


class Net:
    def __init__(self, ck):
        c, h, w = ck.input_shape
        self.ck, self.blocks, self.plan = ck, [], []
        arch = ck.arch
        if arch in ("small-p", "small-p-narrow", "small-p-wide"):
            width = {"small-p": 32, "small-p-narrow": 16, "small-p-wide": 64}[arch]
            hw, cin = (h, w), c
            for i, cout in enumerate((width, 2 * width, 4 * width)):
                self.plan.append(("block", self.add(f"block{i}", cin, cout, 3, 1, 1, True, hw)))
                self.plan.append(("pool",))
                hw, cin = (hw[0] // 2, hw[1] // 2), cout
            self.plan.append(("flatten",))
            feat = cin * hw[0] * hw[1]
        elif arch == "alexnet-p":
            spec = [(64, 5, 2, True), (192, 5, 2, True), (384, 3, 1, False), (256, 3, 1, False), (256, 3, 1, True)]
            hw, cin = (h, w), c
            for i, (cout, k, pad, pool) in enumerate(spec):
                self.plan.append(("block", self.add(f"block{i}", cin, cout, k, 1, pad, True, hw)))
                hw, cin = out_hw(hw, k, 1, pad), cout
                if pool:
                    self.plan.append(("pool",))
                    hw = (hw[0] // 2, hw[1] // 2)
            self.plan.append(("flatten",))
            feat = cin * hw[0] * hw[1]
        elif arch == "resnet18-p":
            hw = (h, w)
            self.plan.append(("block", self.add("stem", c, 64, 3, 1, 1, True, hw)))
            cin = 64
            for s, cout in enumerate((64, 128, 256, 512)):
                for b in range(2):
                    stride = 2 if (s > 0 and b == 0) else 1
                    pre = f"s{s + 1}.b{b}"
                    c1 = self.add(f"{pre}.c1", cin, cout, 3, stride, 1, True, hw)
                    hw2 = out_hw(hw, 3, stride, 1)
                    c2 = self.add(f"{pre}.c2", cout, cout, 3, 1, 1, False, hw2)
                    sc = self.add(f"{pre}.sc", cin, cout, 1, stride, 0, False, hw) \
                        if (stride != 1 or cin != cout) else None
                    self.plan.append(("residual", c1, c2, sc))
                    hw, cin = hw2, cout
            self.plan.append(("gap",))
            feat = cin
        else:
            raise CheckpointError(f"architecture {arch} is not supported by this script")
        self.fc_w = ck.get("fc.weight", (ck.classes, feat))
        self.fc_b = ck.get("fc.bias", (ck.classes,))
        names = {b.name for b in self.blocks}
        stray = ck.passport_layers - names
        if stray:
            raise CheckpointError(f"passport groups {sorted(stray)} are not conv blocks of {arch}")
        if ck.scheme != "baseline" and not ck.passport_layers:
            raise CheckpointError(f"scheme {ck.scheme} without any /passport/<layer> group")

    def add(self, name, cin, cout, k, stride, pad, relu, hw):
        b = ConvBlock(self.ck, name, cin, cout, k, stride, pad, relu, hw)
        self.blocks.append(b)
        return b

    @torch.no_grad()
    def __call__(self, x, branch):
        scheme = self.ck.scheme
        for step in self.plan:
            if step[0] == "block":
                x = step[1](x, branch, scheme)
            elif step[0] == "pool":
                x = F.max_pool2d(x, 2)
            elif step[0] == "flatten":
                x = x.flatten(1)  # NCHW order
            elif step[0] == "gap":
                x = x.mean(dim=(2, 3))
            elif step[0] == "residual":
                _, c1, c2, sc = step
                y = c2(c1(x, branch, scheme), branch, scheme)
                x = F.relu(y + (sc(x, branch, scheme) if sc is not None else x))
        return F.linear(x, self.fc_w, self.fc_b)

    @torch.no_grad()
    def detection(self):
        """Signature detection rate per passport layer: fraction of sign(gamma) == bit."""
        out = []
        for b in self.blocks:
            if b.is_passport:
                g, _ = b.passport_affine()
                out.append((b.name, float((torch.sign(g) == b.bits).float().mean()), b.signature))
        return out


# --------------------------------------------------------------------------
# data

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(dirpath, base):
    for name in (base, base + ".gz"):
        p = os.path.join(dirpath, name)
        if os.path.exists(p):
            return p
    return None


def load_test_set(src, limit):
    """Test images as uint8 (N,C,H,W) and labels, from an IDX directory (MNIST /
    Fashion-MNIST) or a CIFAR-10 binary directory. "kind:DIR" is accepted too."""
    if ":" in src and not os.path.exists(src):
        src = src.split(":", 1)[1]
    imgs = find(src, "t10k-images-idx3-ubyte")
    if imgs:
        x = read_idx(imgs)
        y = read_idx(find(src, "t10k-labels-idx1-ubyte"))
        x = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])
    else:
        for d in (src, os.path.join(src, "cifar-10-batches-bin")):
            p = os.path.join(d, "test_batch.bin")
            if os.path.exists(p):
                raw = np.fromfile(p, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
                x, y = raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0]
                break
        else:
            raise CheckpointError(f"no t10k-images-idx3-ubyte[.gz] or test_batch.bin in {src}")
    if limit and limit > 0:
        x, y = x[:limit], y[:limit]
    return x, y.astype(np.int64)


def normalise(x_u8, mean, std):
    """As ipsweep: pixels * (1/255) in float32, then (x - mean[c]) / std[c]."""
    x = x_u8.astype(np.float32) * np.float32(1.0 / 255.0)
    c = x.shape[1]
    x = (x - mean[:c].reshape(1, c, 1, 1)) / std[:c].reshape(1, c, 1, 1)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def run_batches(net, x, branch, batch):
    return torch.cat([net(x[i:i + batch], branch) for i in range(0, x.shape[0], batch)])


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        epilog="Example: torch_crosscheck.py --ckpt m.h5 --data /usr/share/datasets/fashion-mnist "
               "--limit 2000 --pred preds.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, metavar="M.h5", help="ipsweep checkpoint (HDF5)")
    ap.add_argument("--data", metavar="DIR",
                    help="test data: directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] "
                         "(Fashion-MNIST/MNIST) or CIFAR-10's test_batch.bin; 'fashion-mnist:DIR' is accepted")
    ap.add_argument("--limit", type=int, default=0, metavar="N",
                    help="use the first N test images (as ipsweep eval --test-limit N; default all)")
    ap.add_argument("--pred", metavar="FILE",
                    help="ipsweep's predictions, one integer label per line (ipsweep eval --predictions FILE)")
    ap.add_argument("--branch", choices=("private", "public"), default="private",
                    help="v2/v3: which gamma/beta passport layers use: the passport-derived ones (private, "
                         "default, as ipsweep eval) or the learned public ones; ignored for baseline and v1")
    ap.add_argument("--inputs", metavar="X.f32",
                    help="instead of --data: raw float32 inputs (N,C,H,W), already normalised")
    ap.add_argument("--logits", metavar="Y.f32",
                    help="ipsweep's float32 logits (N,classes) for the same inputs: report max |logit diff|")
    ap.add_argument("--tol", type=float, default=1e-3,
                    help="with --logits: fail when max |logit diff| / max(1, max |logit|) exceeds this (default 1e-3)")
    ap.add_argument("--batch", type=int, default=500, help="evaluation batch (default 500)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--max-list", type=int, default=50, help="list at most this many disagreements (default 50)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not args.data and not args.inputs:
        ap.error("one of --data or --inputs is required")

    try:
        ck = Checkpoint(args.ckpt)
        net = Net(ck)
        print(f"checkpoint: {ck.arch} scheme={ck.scheme} norm={ck.norm} input={ck.input_shape} "
              f"classes={ck.classes} passport layers={','.join(sorted(ck.passport_layers)) or 'none'} "
              f"branch={args.branch if ck.scheme in ('v2', 'v3') else ('passport' if ck.scheme == 'v1' else 'n/a')}")
        unused = ck.unused()
        if unused:
            print(f"note: {len(unused)} datasets not used by this scheme/branch: {', '.join(unused[:8])}"
                  f"{' ...' if len(unused) > 8 else ''}")
        for name, det, sig in net.detection():
            print(f"passport {name}: signature detection {100 * det:.2f}% (signature {sig!r})")

        labels = None
        if args.inputs:
            c, h, w = ck.input_shape
            raw = np.fromfile(args.inputs, dtype=np.float32)
            if raw.size % (c * h * w):
                raise CheckpointError(f"{args.inputs}: {raw.size} floats is not a multiple of {c}x{h}x{w}")
            x = torch.from_numpy(raw.reshape(-1, c, h, w))
            if args.limit > 0:
                x = x[:args.limit]
        else:
            xu8, labels = load_test_set(args.data, args.limit)
            if tuple(xu8.shape[1:]) != ck.input_shape:
                raise CheckpointError(f"data samples are {tuple(xu8.shape[1:])}, the checkpoint expects "
                                      f"{ck.input_shape}")
            x = normalise(xu8, ck.mean, ck.std)
    except (CheckpointError, OSError, KeyError, ValueError) as e:
        print(f"crosscheck: error: {e}", file=sys.stderr)
        return 2

    logits = run_batches(net, x, args.branch, max(1, args.batch))
    n = logits.shape[0]
    ours = logits.argmax(dim=1).numpy()
    if labels is not None:
        print(f"torch accuracy: {100 * float((ours == labels).mean()):.2f}% on {n} images")

    ok = True
    diff_text = "n/a"
    if args.logits:
        ref = np.fromfile(args.logits, dtype=np.float32)
        if ref.size != n * ck.classes:
            print(f"crosscheck: error: {args.logits} has {ref.size} floats, expected {n}x{ck.classes}",
                  file=sys.stderr)
            return 2
        ref = torch.from_numpy(ref.reshape(n, ck.classes))
        diff = float((ref - logits).abs().max())
        scale = max(1.0, float(ref.abs().max()))
        diff_text = f"{diff:.3g}"
        if diff / scale > args.tol:
            print(f"logits differ: max |diff| {diff:.3g} > tol {args.tol} x {scale:.3g}")
            ok = False
        theirs = ref.argmax(dim=1).numpy()
    elif args.pred:
        try:
            with open(args.pred) as f:
                theirs = np.array([int(line) for line in f if line.strip()], dtype=np.int64)
        except (OSError, ValueError) as e:
            print(f"crosscheck: error: {args.pred}: {e}", file=sys.stderr)
            return 2
        if theirs.shape[0] != n:
            print(f"crosscheck: error: {args.pred} has {theirs.shape[0]} predictions, the test set {n} images "
                  f"(use the same --limit as ipsweep's --test-limit)", file=sys.stderr)
            return 2
    else:
        print(f"crosscheck: {n} images, no --pred/--logits to compare with")
        return 0

    agree = int((ours == theirs).sum())
    frac = agree / n if n else 1.0
    print(f"crosscheck: {n} images, agree={agree} ({100 * frac:.2f}%), max |logit diff| {diff_text}")
    bad = np.nonzero(ours != theirs)[0]
    if len(bad):
        top2 = logits.topk(min(2, ck.classes), dim=1).values
        print("disagreements (index: torch / ipsweep, torch top-2 margin):")
        for i in bad[:args.max_list]:
            margin = float(top2[i, 0] - top2[i, 1]) if top2.shape[1] > 1 else float("nan")
            print(f"  {i}: {ours[i]} / {theirs[i]}  margin {margin:.3g}")
        if len(bad) > args.max_list:
            print(f"  ... {len(bad) - args.max_list} more")
    if frac < MIN_AGREEMENT:
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
