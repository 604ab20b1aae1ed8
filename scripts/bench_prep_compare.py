#!/usr/bin/env python3
"""`just bench-prep`'s driver: valar against the Python baseline (scripts/bench_prep.py),
alternating the two for several rounds in one run so that one noisy moment on a shared
machine cannot decide the ratio; prints every round and the median ratio.

With --floor (crates/valar-face/examples/decode_floor.rs), each round also times the decode
floor: libjpeg-turbo alone decoding the faces valar kept in that round, at the scale and
down to the row valar decodes them, on as many threads. valar's share of the floor is its
faces/s (whole process) over the floor's images/s: 100% would mean that reading the CSV,
hashing, cropping, resizing and writing cost nothing beyond the decode. Images valar read
and then rejected count against valar (it spent time on them; the floor never sees them).
Python's share is printed beside it (its own faces, drawn from the same set), to show how
far above Python the floor leaves room for.

    bench_prep_compare.py --valar BIN --csv training.csv --images DIR --big big.csv --work DIR \
        [--floor decode_floor]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd, time_file):
    """Runs `cmd` under GNU time; returns (seconds, peak RSS in MiB, stdout)."""
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v", "-o", str(time_file), *cmd],
                         check=True, capture_output=True, text=True).stdout
    seconds = time.perf_counter() - t0
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_file.read_text()).group(1))
    return seconds, kib / 1024, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--valar", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--big", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--floor", help="the decode_floor example binary (optional)")
    a = p.parse_args()
    work = Path(a.work)
    py = [sys.executable, str(HERE / "bench_prep.py")]

    print(f"== preparation: quota 1000 x 10 intervals, 48x48 gray; {a.rounds} alternating rounds")
    ratios, valar_rss, py_rss, floors, shares, py_shares = [], [], [], [], [], []
    for r in range(1, a.rounds + 1):
        out = work / "prep-valar"
        s, rss, _ = timed([a.valar, "prepare", "--csv", a.csv, "--images", a.images,
                           "--out", str(out), "--force", "--seed", "0"], work / "valar.time")
        info = json.loads((out / "prep.json").read_text())
        faces = info["faces"]
        image_rejects = sum(i["image_rejects"] for i in info["intervals"])
        v_ips = faces / s
        if a.floor:
            fl = json.loads(subprocess.run([a.floor, "--manifest", str(out / "manifest.csv"),
                                            "--images", a.images],
                                           check=True, capture_output=True, text=True).stdout)
        res = json.loads(subprocess.run([*py, "faces", "--csv", a.csv, "--images", a.images,
                                         "--out", str(work / "prep-python"), "--workers", "2"],
                                        check=True, capture_output=True, text=True).stdout)
        p_ips = res["images_per_s"]
        ratios.append(v_ips / p_ips)
        valar_rss.append(rss)
        py_rss.append(res["peak_rss_mib"])
        floor_note = ""
        if a.floor:
            floors.append(fl["images_per_s"])
            shares.append(v_ips / fl["images_per_s"])
            py_shares.append(p_ips / fl["images_per_s"])
            floor_note = (f" | floor {fl['images']} images in {fl['seconds']:.2f} s = "
                          f"{fl['images_per_s']:.0f} images/s ({fl['threads']} threads): "
                          f"valar {100 * shares[-1]:.0f}% of it, python {100 * py_shares[-1]:.0f}%"
                          + (f" ({image_rejects} images valar rejected count against it)"
                             if image_rejects else ""))
        print(f"round {r}: valar {faces} faces in {s:.2f} s = {v_ips:.0f} faces/s, peak RSS {rss:.0f} MiB | "
              f"python {res['faces']} faces in {res['seconds']:.2f} s = {p_ips:.0f} faces/s, "
              f"peak RSS {res['peak_rss_mib']:.0f} MiB | ratio {v_ips / p_ips:.2f}x{floor_note}")
    print(f"prepare ratio (valar / python faces/s), median of {a.rounds}: {statistics.median(ratios):.2f}x; "
          f"peak RSS valar {max(valar_rss):.0f} MiB, python {max(py_rss):.0f} MiB")
    if floors:
        print(f"decode floor (libjpeg-turbo alone, same images, scale and rows), median of {a.rounds}: "
              f"{statistics.median(floors):.0f} images/s; valar's prepare, median share of the floor: "
              f"{100 * statistics.median(shares):.0f}% (rounds {100 * min(shares):.0f}-{100 * max(shares):.0f}%); "
              f"python's: {100 * statistics.median(py_shares):.0f}%")

    # What reduced-scale decoding costs in pixels: the same faces decoded at full size.
    full = work / "prep-valar-full"
    subprocess.run([a.valar, "prepare", "--csv", a.csv, "--images", a.images, "--out", str(full),
                    "--force", "--seed", "0", "--full-scale"], check=True, capture_output=True)
    import numpy as np
    m1 = (work / "prep-valar" / "manifest.csv").read_bytes()
    m2 = (full / "manifest.csv").read_bytes()
    x = np.load(work / "prep-valar" / "faces.npy").astype(np.int16)
    y = np.load(full / "faces.npy").astype(np.int16)
    d = np.abs(x - y)
    print(f"reduced-scale vs full-scale decoding ({'same rows' if m1 == m2 else 'DIFFERENT rows'}): "
          f"mean absolute difference {d.mean():.3f} gray levels, 99th percentile {np.percentile(d, 99):.0f}, "
          f"max {d.max()}, over {x.shape[0]} faces")

    print(f"== stratification: {a.big} (read + exclude + stratify); {2 * a.rounds} alternating rounds")
    v_times, p_times = [], []
    for _ in range(2 * a.rounds):
        s, rss, _ = timed([a.valar, "prepare", "--csv", a.big, "--images", str(work / "no-images"),
                           "--dry-run"], work / "valar-dry.time")
        v_times.append(s)
        res = json.loads(subprocess.run([*py, "stratify", "--csv", a.big], check=True,
                                        capture_output=True, text=True).stdout)
        p_times.append(res["seconds"])
    v, pt = statistics.median(v_times), statistics.median(p_times)
    print(f"valar (whole process, median): {v:.3f} s, peak RSS {rss:.0f} MiB; "
          f"pandas (read_csv + filter + groupby sample, inside Python, median): {pt:.3f} s")
    print(f"stratify ratio (python / valar time), median: {pt / v:.2f}x")


if __name__ == "__main__":
    main()
