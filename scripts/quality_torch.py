#!/usr/bin/env python3
"""The PyTorch reference recipe of issue 8, or valar's default recipe, trained on a valar-prepared folder.

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

`--recipe default` trains valar's default recipe instead (what `valar train` does with no
settings: `TrainConfig::defaults` in crates/valar-train/src/config.rs), written as a careful
PyTorch user would write it, so that the bench can set valar's whole default run beside the
same work in PyTorch. On top of the reference recipe above:

- 50 epochs by default; the same network whose last layer also emits 8 expression logits
  when some training face has an expression class (the manifest's `expression` column,
  AffectNet's codes 0-7; other codes and empty cells are no class); the loss adds 0.5 x
  `CrossEntropyLoss(weight=w)` over the faces of the batch that have a class (none: no
  term), with scikit-learn's "balanced" weights w_c = n / (k n_c) over the k classes
  present in the training split (crates/valar-train/src/expression.rs);
- the learning rate: the per-epoch cosine, times (k + 1) / W for global step k of the
  first epoch's W steps (one epoch of linear warm-up, set every step with LambdaLR;
  crates/valar-train/src/schedule.rs); a last batch of a single face is dropped
  (BatchNorm cannot train on one face), a shorter one trains;
- every training face, on the batch: flipped with probability 0.5, rotated in +-10 deg,
  shifted by whole pixels in +-8% of the side and scaled in 0.9-1.1 about its centre,
  resampled bilinearly with the border repeated (affine_grid / grid_sample with valar's
  sampling map: crates/valar-train/src/augment.rs), then torchvision's ColorJitter
  (brightness=0.2, contrast=0.2: both factors in [0.8, 1.2], their order drawn per face,
  contrast about the face's mean grey, clamped to [0, 255] after each), rounded to byte
  values, then scaled and standardised as above;
- a moving average of the weights and of BatchNorm's running statistics after every step,
  decay min(0.999, (1 + t) / (10 + t)) at step t (0-based), as timm's ModelEma warm-up and
  crates/valar-engine/src/trainer.rs; the average, not the trained weights, is what
  validates, calibrates and tests;
- test-time flips: every prediction is the mean of the network on the face and its
  mirror image;
- after every epoch, validation on the folder's `val` split (the averaged weights with
  flips, predictions clipped to [-1, 1]: CCC per dimension, as valar's metrics.csv);
- at the end, calibration on the last epoch's raw validation predictions, per dimension
  (crates/valar-train/src/calibrate.rs): p' = a p + b with a = k sd_y / sd_p,
  b = mean_y - a mean_p, k = min(1, 1.6 r) (0 when r <= 0), where mean_y and sd_y are the
  training labels', mean_p and sd_p the validation predictions' and r their correlation
  with the validation labels; test predictions are a p + b clipped to [-1, 1], as
  valar's model.onnx outputs them. Without val faces there is no validation and no
  calibration, and without expression classes no head, as in valar;
- with `--out DIR`, the whole training state (weights, averages, AdamW's moments, the
  scheduler) is saved to DIR/checkpoint.pt after every epoch, as valar checkpoints every
  epoch so that a killed run can resume, and the averaged model with its input statistics
  and calibration to DIR/model.pt at the end.

Metrics follow data-facts.md (EmoNet's definitions, population statistics): RMSE,
PCC, CCC = 2 cov / (var_y + var_p + (mean_y - mean_p)^2), and SAGR, the share of
faces where sign(label) == sign(prediction). The mean-prediction baseline predicts
the training split's mean label for every test face.

Run it with OMP_WAIT_POLICY=PASSIVE in the environment: on this project's 2-core
machine OpenMP's default busy-waiting threads slow PyTorch's CPU kernels down
markedly (scripts/bench-train.sh measured it), e.g.

    OMP_WAIT_POLICY=PASSIVE target/bench/torchenv/bin/python scripts/quality_torch.py \
        data/hard-prepared --test data/hard-test --json runs/torch.json

It prints one JSON object and, with `--json OUT`, writes the same object to OUT; with
`--recipe default` the object has the same keys plus the validation figures per epoch
(`val`), the calibration and the test figures before it (`uncalibrated`).
"""

import argparse
import copy
import csv
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
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
    """Issue 8's reference network; its layers keep PyTorch's default initialisation. With
    `outputs` 10 (valar's default with an expression head) the last layer also emits 8
    expression logits after valence and arousal."""

    def __init__(self, channels, size, outputs=2):
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
            nn.Linear(256, outputs),
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


# ---- valar's default recipe (--recipe default) ----------------------------------------------

# AffectNet's eight expressions (codes 0-7), as valar_core::EXPRESSIONS.
CLASSES = 8
# TrainConfig::defaults (crates/valar-train/src/config.rs).
DEFAULT_EPOCHS = 50
WARMUP_EPOCHS = 1
EMA_DECAY = 0.999
EXPRESSION_WEIGHT = 0.5
JITTER = 0.2
# Augment::Affine (crates/valar-train/src/augment.rs): torchvision's RandomAffine(degrees=10,
# translate=(0.08, 0.08), scale=(0.9, 1.1)) plus flips.
AFFINE_MAX_DEGREES = 10.0
AFFINE_MAX_SHIFT = 0.08
MAX_SCALE_CHANGE = 0.1
# calibrate.rs: k = min(1, 2 * SHARE_OF_BOUND * r).
SHARE_OF_BOUND = 0.8
# Faces per inference call (valar's EVAL_BATCH).
EVAL_BATCH = 256


def read_expression_classes(folder, n):
    """Each face's expression class 0-7 from a prepared folder's manifest, -1 for none (an
    empty cell, or AffectNet's codes 8-10: none, uncertain, no face), as valar's class_of."""
    classes = np.full(n, -1, dtype=np.int64)
    with open(os.path.join(folder, "manifest.csv"), newline="") as f:
        for row in csv.DictReader(f):
            code = (row.get("expression") or "").strip()
            if code and 0 <= int(code) < CLASSES:
                classes[int(row["index"])] = int(code)
    return classes


def augment(x, gen, jitter):
    """valar's `affine` augmentation and brightness/contrast jitter of a batch of faces `x`
    (B x C x S x S pixel values in [0, 255], float32), drawn from `gen`; returns the faces
    rounded to byte values, as valar feeds them to the network.

    Output pixel (x, y) samples the source bilinearly at the centre-relative position
    ((cos rx - sin ry) / scale, (sin rx + cos ry) / scale), rx = +-(x - c) - dx, ry = y - c - dy
    (the sign is the flip), clamped to the face (the border repeats): augment.rs's resample,
    as one affine_grid / grid_sample call with align_corners=True, where pixel centres 0 and
    S - 1 are -1 and 1."""
    b, ch, h, w = x.shape
    rand = lambda: torch.rand(b, generator=gen)
    flip = rand() < 0.5
    sx, sy = rand() * 2 - 1, rand() * 2 - 1
    scale = 1 + (rand() * 2 - 1) * MAX_SCALE_CHANGE
    dx = torch.round(sx * AFFINE_MAX_SHIFT * w)  # whole pixels, as torchvision
    dy = torch.round(sy * AFFINE_MAX_SHIFT * h)
    angle = torch.deg2rad((rand() * 2 - 1) * AFFINE_MAX_DEGREES)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = torch.where(flip, -1.0, 1.0)
    c = (w - 1) / 2
    theta = torch.stack([
        torch.stack([cos * sign / scale, -sin / scale, (sin * dy - cos * dx) / (c * scale)], 1),
        torch.stack([sin * sign / scale, cos / scale, (-sin * dx - cos * dy) / (c * scale)], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    if jitter > 0:
        brightness_first = rand() < 0.5
        bright = (1 + (rand() * 2 - 1) * jitter).view(b, 1, 1, 1)
        contrast = (1 + (rand() * 2 - 1) * jitter).view(b, 1, 1, 1)

        def grey_mean(v):
            if ch == 3:  # torchvision's grey: 0.299 R + 0.587 G + 0.114 B
                v = (v * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            return v.mean(dim=(1, 2, 3), keepdim=True)

        def adjust_brightness(v):
            return (v * bright).clamp(0, 255)

        def adjust_contrast(v):
            m = grey_mean(v)
            return (m + contrast * (v - m)).clamp(0, 255)

        x = torch.where(brightness_first.view(b, 1, 1, 1),
                        adjust_contrast(adjust_brightness(x)),
                        adjust_brightness(adjust_contrast(x)))
    return x.round().clamp(0, 255)


def predict_flip_average(model, x):
    """Eval-mode valence/arousal of `x` (standardised), each the mean over the face and its
    mirror image, unclipped, as numpy."""
    model.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, x.shape[0], EVAL_BATCH):
            xb = x[lo : lo + EVAL_BATCH]
            out.append(((model(xb) + model(xb.flip(-1))) / 2)[:, :2])
    return torch.cat(out).numpy()


def fit_calibration(train_y, val_y, val_raw):
    """calibrate.rs's map of one dimension, in float64: (r, k, a, b) with a, b as float32."""
    train_y = train_y.astype(np.float64)
    val_y = val_y.astype(np.float64)
    val_raw = val_raw.astype(np.float64)
    mu_y, sd_y = train_y.mean(), train_y.std()
    mu_p, sd_p = val_raw.mean(), val_raw.std()
    cov = ((val_y - val_y.mean()) * (val_raw - mu_p)).mean()
    denom = math.sqrt(val_y.var() * val_raw.var())
    r = cov / denom if denom > 0 else 0.0
    r = r if math.isfinite(r) else 0.0
    k = min(2 * SHARE_OF_BOUND * r, 1.0) if r > 0 and sd_p > 0 else 0.0
    a = k * sd_y / sd_p if k > 0 else 0.0
    return r, k, np.float32(a), np.float32(mu_y - a * mu_p)


def test_faces(args, faces, labels, splits):
    """The faces and labels to test on: every row of --test's folder (prepared with `valar
    prepare --all`), else DATA's own test split."""
    if args.test:
        t_faces, t_labels, _ = read_prepared(args.test)
        return t_faces, t_labels
    test = splits == "test"
    if not test.any():
        sys.exit(f"{args.data} has no test rows; pass --test DIR")
    return faces[test], labels[test]


def summary(recipe, args, n, t_labels, y_train, pred, seconds, mean, sd, losses, extra=None):
    """The result object both recipes print: the run, then `extra`, then each dimension's test
    metrics beside the mean-prediction baseline."""
    base = y_train.astype(np.float64).mean(axis=0)
    result = {
        "recipe": recipe,
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
    result.update(extra or {})
    for d, name in enumerate(("valence", "arousal")):
        m = metrics(t_labels[:, d], pred[:, d])
        m["baseline_rmse"] = float(np.sqrt(((t_labels[:, d].astype(np.float64) - base[d]) ** 2).mean()))
        m["train_mean"] = float(base[d])
        # A spread near zero means the network collapsed to a constant prediction.
        m["pred_mean"] = float(pred[:, d].astype(np.float64).mean())
        m["pred_sd"] = float(pred[:, d].astype(np.float64).std())
        result[name] = m
    return result


def train_default(args):
    """valar's default recipe (see the module doc); returns the result object."""
    faces, labels, splits = read_prepared(args.data)
    classes = read_expression_classes(args.data, faces.shape[0])
    train = splits == "train"
    val = splits == "val"
    if train.sum() < 2:
        sys.exit(f"{args.data} has {int(train.sum())} train rows; training needs at least 2")
    t_faces, t_labels = test_faces(args, faces, labels, splits)
    x_train, y_train, c_train = faces[train], labels[train], classes[train]
    if t_faces.shape[1:] != x_train.shape[1:]:
        sys.exit(f"test faces are {t_faces.shape[1:]}, training faces {x_train.shape[1:]}")
    _, channels, height, width = x_train.shape
    if height != width or height % 8:
        sys.exit(f"faces must be square with a side divisible by 8, got {height}x{width}")

    # The training split's pixel statistics, in float64 as valar sums them.
    mean = float(x_train.mean(dtype=np.float64) / 255.0)
    sd = float(x_train.std(dtype=np.float64) / 255.0)
    standardise = lambda v: (v / 255.0 - mean) / sd
    x_train_t = torch.from_numpy(x_train.astype(np.float32))  # raw pixels: augmented per batch
    y_train_t = torch.from_numpy(y_train)
    c_train_t = torch.from_numpy(c_train)
    x_val_t = standardise(torch.from_numpy(faces[val].astype(np.float32)))
    y_val = labels[val]
    x_test_t = standardise(torch.from_numpy(t_faces.astype(np.float32)))

    # No expression head without classes (valar's fit_to_data). Balanced weights n / (k n_c)
    # over the classes present; an absent class weighs 0 (no face has it).
    counts = np.bincount(c_train[c_train >= 0], minlength=CLASSES)
    head = counts.sum() > 0
    present = max(int((counts > 0).sum()), 1)
    class_weights = np.where(counts > 0, counts.sum() / (present * np.maximum(counts, 1)), 0.0)
    class_weights_t = torch.tensor(class_weights, dtype=torch.float32)

    model = ReferenceNet(channels, height, 2 + (CLASSES if head else 0))
    # The moving average starts at the starting weights; it evaluates, never trains.
    ema = copy.deepcopy(model).requires_grad_(False)
    averaged = [t for t in list(ema.parameters()) + list(ema.buffers()) if t.is_floating_point()]
    current = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    n = x_train_t.shape[0]
    steps_per_epoch = n // args.batch + (n % args.batch >= 2)
    warmup_steps = WARMUP_EPOCHS * steps_per_epoch

    def rate(step):
        """The share of lr at global step `step`: the per-epoch cosine, warmed up linearly."""
        cosine = 0.5 * (1 + math.cos(math.pi * (step // steps_per_epoch) / args.epochs))
        return cosine * ((step + 1) / warmup_steps if step < warmup_steps else 1.0)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)  # stepped after every optimizer step
    gen = torch.Generator().manual_seed(args.seed)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    losses, history = [], []
    val_raw = None
    step = 0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for lo in range(0, n, args.batch):
            idx = order[lo : lo + args.batch]
            if idx.shape[0] < 2:  # BatchNorm cannot train on a single face
                continue
            xb = standardise(augment(x_train_t[idx], gen, JITTER))
            out = model(xb)
            loss = loss_fn(out[:, :2], y_train_t[idx])
            if head:
                cb = c_train_t[idx]
                has = cb >= 0
                if has.any():
                    ce = F.cross_entropy(out[has, 2:], cb[has], weight=class_weights_t)
                    loss = loss + EXPRESSION_WEIGHT * ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            # avg <- d avg + (1 - d) w for every weight and running statistic (timm's ModelEmaV3).
            decay = min(EMA_DECAY, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(averaged, current, 1 - decay)
            step += 1
            total += loss.item() * idx.shape[0]
            seen += idx.shape[0]
        losses.append(total / seen)
        record = {"epoch": epoch + 1, "train_loss": round(losses[-1], 5)}
        if len(y_val):
            val_raw = predict_flip_average(ema, x_val_t)
            clipped = np.clip(val_raw, -1, 1)
            for d, name in enumerate(("valence", "arousal")):
                record[f"{name}_ccc"] = round(metrics(y_val[:, d], clipped[:, d])["ccc"], 5)
        history.append(record)
        if args.out:
            # The whole training state, replaced atomically, as valar's per-epoch checkpoint.
            path = os.path.join(args.out, "checkpoint.pt")
            torch.save({"epoch": epoch + 1, "model": model.state_dict(), "ema": ema.state_dict(),
                        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "generator": gen.get_state()}, path + ".tmp")
            os.replace(path + ".tmp", path)
        shown = (f", val CCC {record['valence_ccc']:.3f} / {record['arousal_ccc']:.3f}"
                 if "valence_ccc" in record else "")
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {losses[-1]:.4f}{shown} "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)

    seconds = time.perf_counter() - start  # the loop: training, validation, checkpoints

    # Calibration on the last epoch's raw validation predictions (none without val faces).
    calibration = {}
    scale, shift = np.ones(2, dtype=np.float32), np.zeros(2, dtype=np.float32)
    if val_raw is not None:
        for d, name in enumerate(("valence", "arousal")):
            r, k, scale[d], shift[d] = fit_calibration(y_train[:, d], y_val[:, d], val_raw[:, d])
            calibration[name] = {"r": r, "k": k, "scale": float(scale[d]), "shift": float(shift[d])}
    if args.out:
        torch.save({"model": ema.state_dict(), "input_mean": mean, "input_sd": sd,
                    "calibration": {"scale": scale.tolist(), "shift": shift.tolist()}},
                   os.path.join(args.out, "model.pt"))
    raw = predict_flip_average(ema, x_test_t)
    # valar's model.onnx: a p + b (float32), then the clip to the label range.
    pred = np.clip(raw * scale + shift, -1, 1)

    result = summary("pytorch-default", args, n, t_labels, y_train, pred, seconds, mean, sd, losses, {
        "val_faces": int(len(y_val)),
        "expression_head": bool(head),
        "class_weights": [round(float(w), 5) for w in class_weights] if head else None,
        "val": history,
        "calibration": calibration or None,
    })
    unclipped = np.clip(raw, -1, 1)
    result["uncalibrated"] = {name: metrics(t_labels[:, d], unclipped[:, d])
                              for d, name in enumerate(("valence", "arousal"))}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="a valar-prepared folder (faces.npy, manifest.csv) to train on")
    ap.add_argument("--test", metavar="DIR", help="a prepared test folder (valar prepare --all); default: DATA's test split")
    ap.add_argument("--recipe", choices=["reference", "default"], default="reference",
                    help="issue 8's reference recipe (the default), or valar's default recipe")
    ap.add_argument("--epochs", type=int, help="default: 25 for the reference recipe, 50 for valar's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", metavar="OUT", help="also write the result object to OUT")
    ap.add_argument("--out", metavar="DIR", help="--recipe default: save a checkpoint there after every epoch, and the model at the end")
    args = ap.parse_args()
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS if args.recipe == "default" else 25
    if args.epochs < 1:
        sys.exit("--epochs must be at least 1")
    if args.recipe == "default" and args.batch < 2:
        sys.exit("--batch must be at least 2 (BatchNorm needs it)")
    if args.out and args.recipe != "default":
        sys.exit("--out saves the default recipe's checkpoints; the reference recipe saves nothing")

    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        print("note: OMP_WAIT_POLICY=PASSIVE is faster on a small machine", file=sys.stderr)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.recipe == "default":
        result = train_default(args)
        text = json.dumps(result, indent=2)
        print(text)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text + "\n")
        return

    faces, labels, splits = read_prepared(args.data)
    train = splits == "train"
    if not train.any():
        sys.exit(f"{args.data} has no train rows")
    t_faces, t_labels = test_faces(args, faces, labels, splits)
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
    result = summary("pytorch-reference", args, n, t_labels, y_train, pred, seconds, mean, sd, losses)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
