#!/usr/bin/env python3
"""Replays crates/valar-engine/examples/parity.rs in PyTorch and compares, step by step.

    cargo run --release -p valar-engine --example parity -- DIR --steps 20
    python3 scripts/parity_torch.py DIR

Loads valar's initial weights (init.ckpt) into the reference network (the same one as
scripts/quality_torch.py), trains on the very same batches with the same loss (MSE + mean of
1 - CCC), AdamW (lr, weight decay 1e-4) and BatchNorm in training mode, and prints both losses
per step, then the largest relative difference of every parameter after the last step
(final.ckpt). With identical inputs the two should agree to float32 rounding, amplified only
slowly by training; a wrong rule shows as a gap from the first steps.
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_torch import ReferenceNet, loss_fn  # noqa: E402


def read_ckpt(path):
    """{name: array} of a valar checkpoint (VALARCK1, u64 counts, f32 data, SHA-256 trailer)."""
    buf = open(path, "rb").read()
    if buf[:8] != b"VALARCK1" or hashlib.sha256(buf[:-32]).digest() != buf[-32:]:
        sys.exit(f"{path}: not a valar checkpoint, or damaged")
    pos = 8
    u64 = lambda: struct.unpack_from("<Q", buf, pos)[0]
    step = u64(); pos += 8
    count = u64(); pos += 8
    out = {}
    for _ in range(count):
        n = u64(); pos += 8
        name = buf[pos:pos + n].decode(); pos += n
        rank = u64(); pos += 8
        shape = struct.unpack_from(f"<{rank}Q", buf, pos); pos += 8 * rank
        size = u64(); pos += 8
        out[name] = np.frombuffer(buf, dtype="<f4", count=size, offset=pos).reshape(shape)
        pos += 4 * size
    return step, out


def torch_names(model):
    """valar's name for each of the reference network's tensors."""
    names = {}
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]
    fcs = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    for i, (c, b) in enumerate(zip(convs, bns), 1):
        names[f"conv{i}.weight"], names[f"conv{i}.bias"] = c.weight, c.bias
        names[f"bn{i}.weight"], names[f"bn{i}.bias"] = b.weight, b.bias
        names[f"bn{i}.running_mean"], names[f"bn{i}.running_var"] = b.running_mean, b.running_var
    for i, f in enumerate(fcs, 1):
        names[f"fc{i}.weight"], names[f"fc{i}.bias"] = f.weight, f.bias
    return names


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    meta = json.load(open(os.path.join(d, "valar.json")))
    steps, batch, size = meta["steps"], meta["batch"], meta["size"]
    torch.set_num_threads(2)
    x = np.fromfile(os.path.join(d, "x.f32"), dtype="<f4").reshape(steps, batch, 1, size, size)
    y = np.fromfile(os.path.join(d, "y.f32"), dtype="<f4").reshape(steps, batch, 2)
    _, init = read_ckpt(os.path.join(d, "init.ckpt"))
    model = ReferenceNet(1, size)
    names = torch_names(model)
    with torch.no_grad():
        for name, t in names.items():
            t.copy_(torch.from_numpy(init[name].copy()))
    opt = torch.optim.AdamW(model.parameters(), lr=meta["lr"], weight_decay=meta["weight_decay"])
    model.train()
    print(f"{'step':>4} {'valar':>10} {'pytorch':>10}")
    for s in range(steps):
        loss = loss_fn(model(torch.from_numpy(x[s].copy())), torch.from_numpy(y[s].copy()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        print(f"{s + 1:>4} {meta['losses'][s]:>10.5f} {loss.item():>10.5f}")
    _, final = read_ckpt(os.path.join(d, "final.ckpt"))
    print("\nafter the last step, max |valar - pytorch| / max |pytorch| per tensor:")
    for name, t in names.items():
        mine, theirs = final[name], t.detach().numpy()
        scale = max(float(np.abs(theirs).max()), 1e-12)
        print(f"  {name:<20} {float(np.abs(mine - theirs).max()) / scale:.2e}")


if __name__ == "__main__":
    main()
