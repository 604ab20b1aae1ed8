#!/usr/bin/env python3
"""PyTorch CPU baseline for crates/valar-engine/examples/bench_train.rs.

Same networks (facecnn, compact, resnet, mobilenet), same sizes (48x48 grey, 2 outputs), same measurements:
training-step time at batch 64 (MSE loss, AdamW with PyTorch defaults, once with the default
implementation and once with fused=True), inference images/s at batch 256 in eval mode, and peak RSS.
Prints one JSON line per measurement, like the Rust benchmark.

    pip install torch        # CPU wheels are enough
    python3 scripts/bench_train.py [facecnn|compact|reference|resnet|mobilenet ...] [--steps N] [--fused-only]
                                   [--device cpu|cuda]

On CUDA every timing waits for the GPU (torch.cuda.synchronize) before the clock is read.

Run each model in its own process (pass its name) so the peak RSS figures do not mix.
"""
import argparse
import json
import os
import time

import sys

import torch
from torch import nn



def reference(size=48, channels=1, outputs=2):
    """The reference recipe's own network, from scripts/quality_torch.py (imported here only:
    that script needs numpy, which the CPU bench's venv need not have)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from quality_torch import ReferenceNet

    assert outputs == 2, "the reference network has two outputs"
    return ReferenceNet(channels, size)


def conv_block(cin, cout):
    # The recipe's order; valar pools before the ReLU, which computes the same function.
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]


def facecnn(size=48, channels=1, outputs=2):
    side = size // 8
    return nn.Sequential(
        *conv_block(channels, 64), *conv_block(64, 128), *conv_block(128, 256),
        nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(256 * side * side, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 1024), nn.ReLU(),
        nn.Linear(1024, 256), nn.ReLU(),
        nn.Linear(256, outputs),
    )


def compact(size=48, channels=1, outputs=2):
    return nn.Sequential(
        *conv_block(channels, 32), *conv_block(32, 64), *conv_block(64, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(64, outputs),
    )


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: valar's resnet block (crates/valar-engine/src/models/resnet.rs)."""

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or cin != width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


def resnet(size=48, channels=1, outputs=2):
    """valar's resnet: ResNet-18 at half width with a 3x3 stride-1 stem (2,794,978 parameters)."""
    layers = [nn.Conv2d(channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
    cin = 32
    for width, stride in [(32, 1), (64, 2), (128, 2), (256, 2)]:
        layers += [BasicBlock(cin, width, stride), BasicBlock(width, width, 1)]
        cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, outputs))


def mobilenet(size=48, channels=1, outputs=2):
    """valar's mobilenet: a stride-2 stem and 7 depthwise-separable blocks with SiLU (538,370 parameters)."""
    layers = [nn.Conv2d(channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.SiLU()]
    cin = 32
    for width, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        layers += [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.SiLU(),
                   nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.SiLU()]
        cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(512, outputs))


PARAMETERS = {"facecnn": 42_581_634, "resnet": 2_794_978, "mobilenet": 538_370}


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def emit(model, measure, batch, value, unit, **extra):
    print(json.dumps({"engine": "pytorch", "model": model, "measure": measure, "batch": batch,
                      "value": round(value, 3), "unit": unit, "threads": torch.get_num_threads(), **extra}),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["facecnn", "compact"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--fused-only", action="store_true", help="time only fused AdamW (the one compared)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    builders = {"facecnn": facecnn, "compact": compact, "reference": reference, "resnet": resnet,
                "mobilenet": mobilenet}
    batch, infer_batch = 64, 256
    for name in args.models:
        x = torch.rand(batch, 1, 48, 48).to(dev)
        y = (torch.rand(batch, 2) * 2 - 1).to(dev)
        if name in PARAMETERS:
            # The same network as valar's, or the comparison means nothing.
            assert sum(p.numel() for p in builders[name]().parameters()) == PARAMETERS[name], name
        for fused in ((True,) if args.fused_only else (False, True)):
            model = builders[name]().to(dev)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
            loss_fn = nn.MSELoss()

            def step():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                return loss.item()

            step()
            step()
            sync()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync()
            ms = (time.perf_counter() - start) * 1e3 / args.steps
            emit(name, "train_step_ms", batch, ms, "ms", optimizer="adamw_fused" if fused else "adamw")
        model.eval()
        xi = torch.rand(infer_batch, 1, 48, 48).to(dev)
        runs = max(args.steps, 3)
        with torch.inference_mode():
            model(xi)
            sync()
            start = time.perf_counter()
            for _ in range(runs):
                model(xi)
            sync()
            secs = time.perf_counter() - start
        emit(name, "inference_images_per_s", infer_batch, runs * infer_batch / secs, "images/s")
        emit(name, "peak_rss_mib", batch, peak_rss_mib(), "MiB")


if __name__ == "__main__":
    main()
