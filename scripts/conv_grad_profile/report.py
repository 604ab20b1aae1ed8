"""Tables for REPORT.md from a results file: report.py results2.jsonl [results.jsonl ...] > tables.md

Per layer shape and thread count: median ms of every dW and dX formulation (fastest in bold),
PyTorch's aten.convolution_backward; then per network the sum over its layers (x count) per
formulation, a formulation that does not apply to a layer counting as today's there.
"""
import collections
import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from shapes import SHAPES  # noqa: E402


def load(path):
    ort, torch = {}, {}
    for line in open(path):
        r = json.loads(line)
        if r.get("kind") == "torch":
            torch[(r["shape"], r["threads"])] = r
        else:
            ort[(r["shape"], r["grad"], r["form"], r["threads"])] = r["median_ms"]
    return ort, torch


def tables(path, title):
    ort, torch = load(path)
    threads = sorted({k[3] for k in ort})
    out = [f"## {title}\n", f"Source: `{path}` (median ms; bold = fastest of the row's grad).\n"]
    for grad in ("dW", "dX"):
        forms = []
        for k in ort:
            if k[1] == grad and k[2] not in forms:
                forms.append(k[2])
        for t in threads:
            out.append(f"\n### {grad}, intra_op_num_threads = {t}\n")
            out.append("| layer | shape | uses | " + " | ".join(forms) + " | fastest | torch |")
            out.append("|---" * (len(forms) + 5) + "|")
            for sh in SHAPES:
                row = {f: ort.get((sh.name, grad, f, t)) for f in forms}
                vals = {f: v for f, v in row.items() if v is not None}
                if not vals:
                    continue
                best = min(vals, key=vals.get)
                cells = [("**%.2f**" % v if f == best else "%.2f" % v) if v is not None else "-"
                         for f, v in row.items()]
                tr = torch.get((sh.name, t), {}).get(grad)
                out.append(f"| {sh.name} | {sh.desc()} | {sh.count} | " + " | ".join(cells)
                           + f" | {best} | " + ("%.2f" % tr if tr else "-") + " |")
            for net in ("resnet", "mobilenet"):
                sums = collections.defaultdict(float)
                tsum = 0.0
                best_sum = 0.0
                for sh in SHAPES:
                    if sh.net != net:
                        continue
                    today = ort.get((sh.name, grad, "today", t))
                    if today is None:
                        continue
                    vals = {f: ort.get((sh.name, grad, f, t)) for f in forms}
                    for f in forms:
                        v = vals[f] if vals[f] is not None else today
                        sums[f] += sh.count * v
                    best_sum += sh.count * min(v for v in vals.values() if v is not None)
                    tsum += sh.count * torch.get((sh.name, t), {}).get(grad, 0.0)
                cells = " | ".join("%.1f" % sums[f] for f in forms)
                out.append(f"| **{net} total** | (x uses; n/a = today) | | {cells} | "
                           f"best per layer {best_sum:.1f} | {tsum:.1f} |")
    return "\n".join(out)


if __name__ == "__main__":
    paths = sys.argv[1:] or ["results.jsonl"]
    titles = ["Main run"] + [f"Earlier run {i}" for i in range(1, len(paths))]
    print("\n\n".join(tables(p, t) for p, t in zip(paths, titles)))


def recommended(sh, grad):
    """The formulation REPORT.md recommends for a layer."""
    if grad == "dW":
        if sh.depthwise:
            return "conv" if sh.s == 1 and sh.h <= 6 else "dw_conv_dwise"
        if sh.cin == 1 and sh.s > 1:
            return "conv"
        return "today"
    if sh.g == 1 and sh.k > 1 and sh.s == 1 and sh.h >= 24:
        return "convT"
    return "today"


def policy(path):
    ort, torch = load(path)
    out = [f"\n### Per network: today vs the recommendation (`{path}`)\n",
           "| network | threads | dW today | dW recommended | dX today | dX recommended | "
           "dW+dX today | dW+dX recommended | torch dW+dX (separate calls) |", "|---" * 9 + "|"]
    for net in ("resnet", "mobilenet"):
        for t in sorted({k[3] for k in ort}):
            s = collections.defaultdict(float)
            for sh in SHAPES:
                if sh.net != net:
                    continue
                for grad in ("dW", "dX"):
                    td = ort.get((sh.name, grad, "today", t))
                    if td is None:
                        continue
                    s[grad + "t"] += sh.count * td
                    s[grad + "r"] += sh.count * ort[(sh.name, grad, recommended(sh, grad), t)]
                    s["torch"] += sh.count * torch.get((sh.name, t), {}).get(grad, float("nan"))
            out.append(f"| {net} | {t} | {s['dWt']:.1f} | {s['dWr']:.1f} | {s['dXt']:.1f} | "
                       f"{s['dXr']:.1f} | {s['dWt'] + s['dXt']:.1f} | {s['dWr'] + s['dXr']:.1f} | "
                       f"{s['torch']:.1f} |")
    return "\n".join(out)
