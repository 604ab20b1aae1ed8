#!/usr/bin/env python3
"""The job `valar prepare` does, written the way a careful Python user would:
pandas for the table, Pillow with Image.draft for reduced-scale JPEG decoding,
and multiprocessing with 2 workers. Used by `just bench-prep` as the baseline.

    bench_prep.py faces --csv training.csv --images DIR --out OUT [--quota 1000]
    bench_prep.py stratify --csv training.csv [--quota 1000]

Prints one JSON line with the timings.
"""
import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import time

import numpy as np
import pandas as pd
from PIL import Image

COLUMNS = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
           "facial_landmarks", "expression", "valence", "arousal"]


def read_table(csv):
    with open(csv) as f:
        header = f.readline().startswith("subDirectory_filePath")
    return pd.read_csv(csv, header=0 if header else None, names=None if header else COLUMNS)


def stratify(df, quota, intervals, seed):
    ok = (df.valence != -2) & (df.arousal != -2) & (df.expression < 8)
    ok &= df.valence.between(-1, 1) & df.arousal.between(-1, 1)
    df = df[ok].copy()
    # The same edge rule as valar: a label on an edge belongs to the interval above it.
    df["interval"] = np.minimum(np.floor((df.arousal + 1) / 2 * intervals + 1e-9), intervals - 1).astype(int)
    return df.groupby("interval", group_keys=False).apply(
        lambda g: g.sample(n=min(quota, len(g)), random_state=seed))


def process(args):
    root, rel, x, y, w, h, size = args
    with open(os.path.join(root, rel), "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    im = Image.open(io.BytesIO(data))
    full_w, full_h = im.size
    scale = size / min(w, h)
    # draft() lets libjpeg decode at 1/2, 1/4 or 1/8 scale, as large as still needed.
    im.draft("L", (max(1, int(full_w * scale)), max(1, int(full_h * scale))))
    sx, sy = im.width / full_w, im.height / full_h
    box = (max(0, x) * sx, max(0, y) * sy, min(full_w, x + w) * sx, min(full_h, y + h) * sy)
    face = im.convert("L").resize((size, size), Image.BICUBIC, box=box)
    return np.asarray(face, dtype=np.uint8), digest


def faces(a):
    t0 = time.perf_counter()
    df = read_table(a.csv)
    sub = stratify(df, a.quota, a.intervals, a.seed)
    t1 = time.perf_counter()
    jobs = [(a.images, r.subDirectory_filePath, int(r.face_x), int(r.face_y),
             int(r.face_width), int(r.face_height), a.size) for r in sub.itertuples()]
    with mp.Pool(a.workers) as pool:
        results = pool.map(process, jobs, chunksize=64)
    t2 = time.perf_counter()
    os.makedirs(a.out, exist_ok=True)
    arr = np.stack([r[0] for r in results])[:, None, :, :]
    np.save(os.path.join(a.out, "faces.npy"), arr)
    sub = sub.assign(sha256=[r[1] for r in results])
    sub.drop(columns=["facial_landmarks"]).to_csv(os.path.join(a.out, "manifest.csv"), index=False)
    t3 = time.perf_counter()
    # Peak RSS: the parent's own, plus each worker at the largest worker's peak
    # (ru_maxrss of RUSAGE_CHILDREN is the largest child's, in KiB on Linux).
    main_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mib = (main_kib + a.workers * worker_kib) / 1024
    print(json.dumps({"tool": "python", "task": "prepare", "faces": len(results),
                      "peak_rss_mib": round(peak_mib, 1),
                      "seconds": t3 - t0, "table_s": t1 - t0, "faces_s": t2 - t1,
                      "images_per_s": len(results) / (t3 - t0)}))


def strat(a):
    t0 = time.perf_counter()
    df = read_table(a.csv)
    t1 = time.perf_counter()
    sub = stratify(df, a.quota, a.intervals, a.seed)
    t2 = time.perf_counter()
    print(json.dumps({"tool": "python", "task": "stratify", "rows": len(df), "chosen": len(sub),
                      "seconds": t2 - t0, "read_s": t1 - t0, "sample_s": t2 - t1}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["faces", "stratify"])
    p.add_argument("--csv", required=True)
    p.add_argument("--images")
    p.add_argument("--out")
    p.add_argument("--quota", type=int, default=1000)
    p.add_argument("--intervals", type=int, default=10)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    faces(a) if a.task == "faces" else strat(a)


if __name__ == "__main__":
    main()
