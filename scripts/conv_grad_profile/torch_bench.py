"""PyTorch's own conv backward for one shape (run with /work/main/target/bench/torchenv/bin/python).

Usage: torch_bench.py SHAPE_NAME THREADS ROUNDS  -> prints one JSON line with median ms of
aten.convolution_backward for dW only, dX only (if the layer needs it), and both at once.
"""
import json
import statistics
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import torch  # noqa: E402

from shapes import BY_NAME  # noqa: E402


def main():
    sh = BY_NAME[sys.argv[1]]
    threads, rounds = int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(sh.n, sh.cin, sh.h, sh.h, generator=g)
    w = torch.randn(sh.cout, sh.cin // sh.g, sh.k, sh.k, generator=g)
    dy = torch.randn(sh.n, sh.cout, sh.ho, sh.ho, generator=g)
    args = ([sh.s] * 2, [sh.p] * 2, [1, 1], False, [0, 0], sh.g)

    def bw(mask):
        return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, *args, mask)

    fns = {"dW": bw([False, True, False])}
    if sh.dx:
        fns["dX"] = bw([True, False, False])
        fns["both"] = bw([True, True, False])
    # correctness against the plain definition (autograd of conv2d) once
    out = fns["dW"]()[1]
    xr = x.clone().double().requires_grad_(True)
    wr = w.clone().double().requires_grad_(True)
    y = torch.nn.functional.conv2d(xr, wr, None, sh.s, sh.p, 1, sh.g)
    y.backward(dy.double())
    err = float((out.double() - wr.grad).abs().max() / wr.grad.abs().max())
    times = {k: [] for k in fns}
    with torch.no_grad():
        for f in fns.values():
            f(), f()
        for r in range(rounds):
            names = list(fns)
            names = names[r % len(names):] + names[:r % len(names)]
            for k in names:
                t0 = time.perf_counter()
                fns[k]()
                times[k].append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"shape": sh.name, "threads": threads, "err_dw": err,
                      **{k: statistics.median(v) for k, v in times.items()}}))


if __name__ == "__main__":
    main()
