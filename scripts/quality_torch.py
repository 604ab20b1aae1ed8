#!/usr/bin/env python3
"""The PyTorch reference recipe of issue 8, trained on a valar-prepared folder.

Both sides of the quality comparison must train on identical faces, so this reads
what `valar prepare` wrote: `faces.npy` (N x C x H x W, uint8) and `manifest.csv`
(its `split` column says train / val / test; `valence` and `arousal` are the
targets). It trains on the train split and scores the final epoch on a test set:
another prepared folder given with `--test DIR` (prepared with `valar prepare ...
--all`, so every row is `test`), or else this folder's own `test` rows.

The recipe, exactly as issue 8 states it:

- network: three blocks of Conv2d(3x3, padding 1) -> BatchNorm2d -> ReLU ->
  MaxPool2d(2) with 64, 128 and 256 channels; Flatten (256 * 6 * 6 for 48x48
  input) -> Linear 1024 -> ReLU -> Linear 256 -> ReLU -> Linear 2; PyTorch's
  default initialisation (nothing is re-initialised here);
- input: pixels / 255, then standardised by the training split's mean and
  standard deviation (two scalars over all training pixels);
- AdamW, lr 1e-3, weight decay 1e-4; CosineAnnealingLR(T_max=epochs), stepped
  once per epoch; batch 64, reshuffled every epoch, drop_last=False (the last,
  smaller batch is kept); random horizontal flip with probability 0.5;
- loss: MSE + (1 - CCC_valence) / 2 + (1 - CCC_arousal) / 2, with CCC computed on
  each batch with population statistics;
- 25 epochs by default; the test figures are the final epoch's (no early stopping,
  no best-epoch selection).

Metrics follow data-facts.md (EmoNet's definitions, population statistics): RMSE,
PCC, CCC = 2 cov / (var_y + var_p + (mean_y - mean_p)^2), and SAGR, the share of
faces where sign(label) == sign(prediction). The mean-prediction baseline predicts
the training split's mean label for every test face.

Run it with OMP_WAIT_POLICY=PASSIVE in the environment: on this project's 2-core
machine OpenMP's default busy-waiting threads slow PyTorch's CPU kernels down
markedly (scripts/bench-train.sh measured it), e.g.

    OMP_WAIT_POLICY=PASSIVE target/bench/torchenv/bin/python scripts/quality_torch.py \
        data/hard-prepared --test data/hard-test --json runs/torch.json

It prints one JSON object and, with `--json OUT`, writes the same object to OUT.
"""

import argparse
import csv
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
from torch import nn


def read_prepared(folder):
    """Faces (uint8, N x C x H x W), labels (N x 2 float32) and splits of a prepared folder."""
    faces = np.load(os.path.join(folder, "faces.npy"))
    if faces.ndim != 4 or faces.dtype != np.uint8:
        sys.exit(f"{folder}/faces.npy: expected uint8 N x C x H x W, got {faces.dtype} {faces.shape}")
    labels = np.zeros((faces.shape[0], 2), dtype=np.float32)
    splits = np.empty(faces.shape[0], dtype=object)
    seen = np.zeros(faces.shape[0], dtype=bool)
    with open(os.path.join(folder, "manifest.csv"), newline="") as f:
        for row in csv.DictReader(f):
            i = int(row["index"])
            if not 0 <= i < faces.shape[0] or seen[i]:
                sys.exit(f"{folder}/manifest.csv: bad or repeated index {i}")
            seen[i] = True
            labels[i] = (float(row["valence"]), float(row["arousal"]))
            splits[i] = row["split"]
    if not seen.all():
        sys.exit(f"{folder}/manifest.csv: {int((~seen).sum())} faces have no row")
    return faces, labels, splits


class ReferenceNet(nn.Module):
    """Issue 8's reference network; its layers keep PyTorch's default initialisation."""

    def __init__(self, channels, size):
        super().__init__()
        layers = []
        c_in = channels
        for c_out in (64, 128, 256):
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = size // 8  # three 2x2 poolings (floor division, as MaxPool2d does)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * side * side, 1024),
            nn.ReLU(),
            nn.Linear(1024, 256),
            nn.ReLU(),
            nn.Linear(256, 2),
        )

    def forward(self, x):
        return self.head(self.features(x))


def batch_ccc(pred, target):
    """CCC of one column pair over a batch, population statistics (differentiable)."""
    mp, mt = pred.mean(), target.mean()
    vp = ((pred - mp) ** 2).mean()
    vt = ((target - mt) ** 2).mean()
    cov = ((pred - mp) * (target - mt)).mean()
    # The epsilon only guards a batch whose labels and predictions are all equal.
    return 2 * cov / (vp + vt + (mp - mt) ** 2 + 1e-12)


def loss_fn(pred, target):
    """MSE over both outputs + (1 - CCC_v)/2 + (1 - CCC_a)/2."""
    mse = ((pred - target) ** 2).mean()
    ccc_v = batch_ccc(pred[:, 0], target[:, 0])
    ccc_a = batch_ccc(pred[:, 1], target[:, 1])
    return mse + (1 - ccc_v) / 2 + (1 - ccc_a) / 2


def metrics(y, p):
    """RMSE, PCC, CCC and SAGR of one dimension, population statistics, in float64."""
    y = y.astype(np.float64)
    p = p.astype(np.float64)
    my, mp = y.mean(), p.mean()
    vy, vp = y.var(), p.var()  # numpy's var is the population variance (ddof=0)
    cov = ((y - my) * (p - mp)).mean()
    pcc = cov / math.sqrt(vy * vp) if vy > 0 and vp > 0 else 0.0
    ccc = 2 * cov / (vy + vp + (my - mp) ** 2) if vy + vp + (my - mp) ** 2 > 0 else 0.0
    return {
        "rmse": float(np.sqrt(((y - p) ** 2).mean())),
        "pcc": float(pcc),
        "ccc": float(ccc),
        "sagr": float((np.sign(y) == np.sign(p)).mean()),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="a valar-prepared folder (faces.npy, manifest.csv) to train on")
    ap.add_argument("--test", metavar="DIR", help="a prepared test folder (valar prepare --all); default: DATA's test split")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", metavar="OUT", help="also write the result object to OUT")
    args = ap.parse_args()
    if args.epochs < 1:
        sys.exit("--epochs must be at least 1")

    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        print("note: OMP_WAIT_POLICY=PASSIVE is faster on a small machine", file=sys.stderr)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    faces, labels, splits = read_prepared(args.data)
    train = splits == "train"
    if not train.any():
        sys.exit(f"{args.data} has no train rows")
    if args.test:
        t_faces, t_labels, _ = read_prepared(args.test)  # every row of an --all folder
    else:
        test = splits == "test"
        if not test.any():
            sys.exit(f"{args.data} has no test rows; pass --test DIR")
        t_faces, t_labels = faces[test], labels[test]
    x_train = faces[train]
    y_train = labels[train]
    if t_faces.shape[1:] != x_train.shape[1:]:
        sys.exit(f"test faces are {t_faces.shape[1:]}, training faces {x_train.shape[1:]}")

    # Standardise with the training split's statistics only (scalars over all pixels).
    scaled = x_train.astype(np.float32) / 255.0
    mean, sd = float(scaled.mean()), float(scaled.std())
    x_train_t = torch.from_numpy((scaled - mean) / sd)
    y_train_t = torch.from_numpy(y_train)
    x_test_t = torch.from_numpy((t_faces.astype(np.float32) / 255.0 - mean) / sd)

    _, channels, height, width = x_train.shape
    if height != width or height % 8:
        sys.exit(f"faces must be square with a side divisible by 8, got {height}x{width}")
    model = ReferenceNet(channels, height)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)

    n = x_train_t.shape[0]
    losses = []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for lo in range(0, n, args.batch):  # drop_last=False: the short last batch trains too
            idx = order[lo : lo + args.batch]
            xb = x_train_t[idx]
            flip = torch.rand(idx.shape[0], generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            yb = y_train_t[idx]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
            seen += idx.shape[0]
        sched.step()
        losses.append(total / seen)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {losses[-1]:.4f} "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x_test_t[i : i + 256]) for i in range(0, x_test_t.shape[0], 256)]).numpy()
    base = y_train.astype(np.float64).mean(axis=0)
    result = {
        "recipe": "pytorch-reference",
        "data": args.data,
        "test": args.test or f"{args.data} (test split)",
        "train_faces": int(n),
        "test_faces": int(t_labels.shape[0]),
        "seed": args.seed,
        "epochs": args.epochs,
        "threads": args.threads,
        "seconds": round(seconds, 1),
        "input_mean": mean,
        "input_sd": sd,
        "train_loss": [round(x, 5) for x in losses],
    }
    for d, name in enumerate(("valence", "arousal")):
        m = metrics(t_labels[:, d], pred[:, d])
        m["baseline_rmse"] = float(np.sqrt(((t_labels[:, d].astype(np.float64) - base[d]) ** 2).mean()))
        m["train_mean"] = float(base[d])
        # A spread near zero means the network collapsed to a constant prediction.
        m["pred_mean"] = float(pred[:, d].astype(np.float64).mean())
        m["pred_sd"] = float(pred[:, d].astype(np.float64).std())
        result[name] = m
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
