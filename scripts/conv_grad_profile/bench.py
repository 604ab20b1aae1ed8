"""Checks and times every dW / dX formulation for every layer shape with ONNX Runtime (CPU).

Usage: python3 bench.py [--threads 1,2] [--only NAME_PREFIX,...] [--no-torch] [--out results.jsonl]
Appends one JSON line per (shape, grad, form, threads) to the output file.
Session settings follow valar's runtime.rs: ORT_ENABLE_ALL, sequential, inter 1, intra T,
no spinning, no memory pattern.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forms import DW_FORMS, DX_FORMS, check_model  # noqa: E402
from ref import ref_dw, ref_dx, rel_err  # noqa: E402
from shapes import SHAPES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# PyTorch for the reference column: bench-quality's environment, or TORCH_PYTHON.
TORCH_PY = os.environ.get(
    "TORCH_PYTHON", os.path.join(HERE, "..", "..", "target", "bench", "torchenv", "bin", "python"))


def session(model, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_mem_pattern = False
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def time_round_robin(runs, min_rounds=7, target_s=1.5, max_rounds=31):
    """runs: name -> zero-arg callable. Warm up twice, then rounds of every callable in a
    rotating order; returns name -> list of ms."""
    for f in runs.values():
        f()
    t0 = time.perf_counter()
    for f in runs.values():
        f()
    per_round = time.perf_counter() - t0
    rounds = int(min(max_rounds, max(min_rounds, target_s / max(per_round, 1e-6))))
    times = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            t = time.perf_counter()
            runs[k]()
            times[k].append((time.perf_counter() - t) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--skip", default="", help="comma-separated form names to leave out")
    ap.add_argument("--out", default=os.path.join(HERE, "results.jsonl"))
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    only = [p for p in a.only.split(",") if p]
    skip = set(f for f in a.skip.split(",") if f)
    shapes = [s for s in SHAPES if not only or any(s.name.startswith(p) for p in only)]
    out = open(a.out, "a")
    rng = np.random.default_rng(0)
    for sh in shapes:
        x = rng.standard_normal((sh.n, sh.cin, sh.h, sh.h), dtype=np.float32)
        dy = rng.standard_normal((sh.n, sh.cout, sh.ho, sh.ho), dtype=np.float32)
        w = rng.standard_normal((sh.cout, sh.cin // sh.g, sh.k, sh.k), dtype=np.float32)
        rdw = ref_dw(sh, x, dy)
        rdx = ref_dx(sh, dy, w) if sh.dx else None
        models = {}
        for name, (ok, build) in DW_FORMS.items():
            if ok(sh) and name not in skip:
                models[("dW", name)] = check_model(build(sh))
        for name, (ok, build) in DX_FORMS.items():
            if ok(sh) and name not in skip:
                models[("dX", name)] = check_model(build(sh))
        errs = {}
        for t in threads:
            sess = {key: session(m, t) for key, m in models.items()}
            runs = {}
            for key, s in sess.items():
                feeds = {"X": x, "dY": dy} if key[0] == "dW" else {"dY": dy, "W": w}
                if t == threads[0]:
                    o = s.run(None, feeds)[0]
                    errs[key] = rel_err(o, rdw if key[0] == "dW" else rdx)
                if errs[key] > 1e-4:
                    print(f"  WRONG {sh.name} {key} err={errs[key]:.2e}", flush=True)
                    continue
                runs[key] = (lambda s=s, f=feeds: s.run(None, f))
            times = time_round_robin(runs)
            for key, v in times.items():
                rec = dict(shape=sh.name, net=sh.net, grad=key[0], form=key[1], threads=t,
                           median_ms=statistics.median(v), min_ms=min(v), n=len(v),
                           err=errs[key])
                out.write(json.dumps(rec) + "\n")
            out.flush()
            line = "  ".join(f"{g}:{f}={statistics.median(v):.2f}" for (g, f), v in times.items())
            print(f"{sh.name} [{sh.desc()}] t={t}: {line}", flush=True)
            del sess, runs
            if not a.no_torch:
                rounds = max(7, min(31, len(times[next(iter(times))])))
                r = subprocess.run([TORCH_PY, os.path.join(HERE, "torch_bench.py"), sh.name,
                                    str(t), str(rounds)], capture_output=True, text=True)
                if r.returncode == 0:
                    rec = json.loads(r.stdout.strip().splitlines()[-1])
                    rec.update(kind="torch", net=sh.net)
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    print(f"   torch t={t}: {rec}", flush=True)
                else:
                    print("   torch failed:", r.stderr[-2000:], flush=True)


if __name__ == "__main__":
    main()
