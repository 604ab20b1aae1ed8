#!/usr/bin/env python3
"""The bookkeeping of `just bench-quality` (scripts/bench-quality.sh), in plain Python.

    bench_quality.py row --name NAME --seed S --engine valar --predictions P.csv --train DIR [--metrics M.csv] [--seconds T]
    bench_quality.py row --name NAME --seed S --engine pytorch --torch-json OUT.json
    bench_quality.py table --results results.jsonl --train DIR --test DIR

`row` prints one JSON line: test RMSE, PCC, CCC and SAGR per dimension, computed here from a
valar predictions CSV with the field's definitions (population statistics), or read from
scripts/quality_torch.py's JSON (either recipe), which computes them the same way. `table`
prints a Markdown table of every row name, mean ± sd over seeds, with the mean-prediction
baseline (the training split's mean predicted for every test face) first; under it, valar's
reference against PyTorch's (parity, whole-run speed) and valar's default against PyTorch's
default (whole-run speed), for the seeds both sides have.
"""
import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path

DIMS = ("valence", "arousal")


def metrics(y, p):
    """RMSE, PCC, CCC and SAGR of one dimension, population statistics."""
    n = len(y)
    my, mp = sum(y) / n, sum(p) / n
    vy = sum((a - my) ** 2 for a in y) / n
    vp = sum((b - mp) ** 2 for b in p) / n
    cov = sum((a - my) * (b - mp) for a, b in zip(y, p)) / n
    denom = vy + vp + (my - mp) ** 2
    sign = lambda v: (v > 0) - (v < 0)
    return {
        "rmse": math.sqrt(sum((a - b) ** 2 for a, b in zip(y, p)) / n),
        "pcc": cov / math.sqrt(vy * vp) if vy > 0 and vp > 0 else 0.0,
        "ccc": 2 * cov / denom if denom > 0 else 0.0,
        "sagr": sum(sign(a) == sign(b) for a, b in zip(y, p)) / n,
    }


def manifest_labels(folder, split=None):
    """(valence, arousal) lists of a prepared folder's manifest rows, optionally one split."""
    with open(Path(folder) / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if split is None or r["split"] == split]
    return [float(r["valence"]) for r in rows], [float(r["arousal"]) for r in rows]


def row(args):
    out = {"name": args.name, "seed": args.seed, "engine": args.engine}
    if args.engine == "pytorch":
        res = json.load(open(args.torch_json))
        for d in DIMS:
            out[d] = {k: res[d][k] for k in ("rmse", "pcc", "ccc", "sagr")}
        out["seconds"] = res["seconds"]
        if args.seconds is not None:
            # The whole process (the script's own "seconds" is its training loop alone).
            out["process_seconds"] = args.seconds
        out["final_train_loss"] = res["train_loss"][-1]
    else:
        with open(args.predictions, newline="") as f:
            rows = list(csv.DictReader(f))
        for d in DIMS:
            y = [float(r[f"{d}_true"]) for r in rows]
            p = [float(r[f"{d}_pred"]) for r in rows]
            out[d] = metrics(y, p)
        out["seconds"] = args.seconds
        if args.metrics:
            with open(args.metrics, newline="") as f:
                epochs = list(csv.DictReader(f))
            out["final_train_loss"] = float(epochs[-1]["train_loss"])
            out["epochs"] = len(epochs)
    print(json.dumps(out))


def mean_sd(values):
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.3f} ± {sd:.3f}"


def table(args):
    results = [json.loads(l) for l in open(args.results) if l.strip()]
    if not results:
        sys.exit(f"{args.results} holds no results")
    train_v, train_a = manifest_labels(args.train, "train")
    test_v, test_a = manifest_labels(args.test)
    base = {}
    for d, tr, te in (("valence", train_v, test_v), ("arousal", train_a, test_a)):
        mu = sum(tr) / len(tr)
        base[d] = math.sqrt(sum((t - mu) ** 2 for t in te) / len(te))
    names = list(dict.fromkeys(r["name"] for r in results))
    seeds = sorted({r["seed"] for r in results})
    print(f"{args.title}: {len(train_v)} training faces, {len(test_v)} test faces; "
          f"seeds {', '.join(map(str, seeds))}; test metrics, mean ± sd over seeds.\n")
    print("| recipe | valence CCC | arousal CCC | valence RMSE | arousal RMSE | final train loss | minutes |")
    print("|---|---|---|---|---|---|---|")
    print(f"| predict the training mean | 0 | 0 | {base['valence']:.3f} | {base['arousal']:.3f} | | |")
    for name in names:
        rs = [r for r in results if r["name"] == name]
        cells = [mean_sd([r[d]["ccc"] for r in rs]) for d in DIMS]
        cells += [mean_sd([r[d]["rmse"] for r in rs]) for d in DIMS]
        losses = [r["final_train_loss"] for r in rs if "final_train_loss" in r]
        cells.append(f"{statistics.fmean(losses):.3f}" if losses else "")
        secs = [r["seconds"] for r in rs if r.get("seconds") is not None]
        cells.append(f"{statistics.fmean(secs) / 60:.1f}" if secs else "")
        print(f"| {name} (n={len(rs)}) | " + " | ".join(cells) + " |")
    by_seed = lambda name: {r["seed"]: r for r in results if r["name"] == name}
    lines = []
    ref, mine = by_seed("PyTorch reference"), by_seed("valar reference")
    common = sorted(set(ref) & set(mine))
    if common:
        for d in DIMS:
            gap = statistics.fmean(mine[s][d]["ccc"] - ref[s][d]["ccc"] for s in common)
            verdict = "within" if abs(gap) <= 0.03 else "OUTSIDE"
            lines.append(f"parity, {d}: valar reference − PyTorch reference = {gap:+.3f} CCC "
                         f"({verdict} ±0.03)")
        lines += whole_run(ref, mine, common, "reference")
    ref, mine = by_seed("PyTorch default"), by_seed("valar default")
    lines += whole_run(ref, mine, sorted(set(ref) & set(mine)), "default")
    if lines:
        print()
        print("\n".join(lines))


def whole_run(ref, mine, seeds, recipe):
    """The whole-run speed of valar's `recipe` (reference or default) against the same recipe
    in PyTorch (scripts/quality_torch.py), seed by seed: each side's process wall time
    (start-up, loading, training, testing) on the same faces, as a list of one line, or none
    when no seed has both sides' whole-process times. Fair only when both ran alike: one model
    at a time (BENCH_JOBS=1) or each on its own core."""
    timed = [s for s in seeds
             if ref[s].get("process_seconds") and mine[s].get("seconds")]
    if not timed:
        return []
    ratios = sorted(ref[s]["process_seconds"] / mine[s]["seconds"] for s in timed)
    mins = lambda side, key: statistics.median(side[s][key] / 60 for s in timed)
    return [f"whole run, {recipe} recipe: valar {mins(mine, 'seconds'):.1f} min, PyTorch "
            f"{mins(ref, 'process_seconds'):.1f} min (medians): {statistics.median(ratios):.2f}x "
            f"PyTorch's speed (seeds {ratios[0]:.2f}-{ratios[-1]:.2f}; above 1 is faster)"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("row")
    r.add_argument("--name", required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--engine", choices=["valar", "pytorch"], required=True)
    r.add_argument("--predictions")
    r.add_argument("--torch-json")
    r.add_argument("--train")
    r.add_argument("--metrics")
    r.add_argument("--seconds", type=float)
    t = sub.add_parser("table")
    t.add_argument("--results", required=True)
    t.add_argument("--train", required=True)
    t.add_argument("--test", required=True)
    t.add_argument("--title", default="Hard synthetic set")
    args = ap.parse_args()
    row(args) if args.cmd == "row" else table(args)


if __name__ == "__main__":
    main()
