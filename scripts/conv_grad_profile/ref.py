"""float64 numpy references for a convolution's dW and dX (groups 1 or depthwise)."""
import numpy as np


def _taps(sh):
    e = sh.s * (sh.ho - 1) + 1
    for kh in range(sh.k):
        for kw in range(sh.k):
            yield kh, kw, (slice(None), slice(None), slice(kh, kh + e, sh.s), slice(kw, kw + e, sh.s))


def ref_dw(sh, x, dy):
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    p = sh.p
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dw = np.zeros((sh.cout, sh.cin // sh.g, sh.k, sh.k))
    for kh, kw, sl in _taps(sh):
        xs = xp[sl]
        if sh.depthwise:
            dw[:, 0, kh, kw] = np.einsum("nchw,nchw->c", dy, xs)
        else:
            dw[:, :, kh, kw] = np.tensordot(dy, xs, axes=([0, 2, 3], [0, 2, 3]))
    return dw


def ref_dx(sh, dy, w):
    dy, w = dy.astype(np.float64), w.astype(np.float64)
    p = sh.p
    dxp = np.zeros((sh.n, sh.cin, sh.h + 2 * p, sh.h + 2 * p))
    for kh, kw, sl in _taps(sh):
        if sh.depthwise:
            dxp[sl] += dy * w[:, 0, kh, kw][None, :, None, None]
        else:
            dxp[sl] += np.einsum("nohw,oc->nchw", dy, w[:, :, kh, kw])
    return dxp[:, :, p:p + sh.h, p:p + sh.h]


def rel_err(a, ref):
    return float(np.max(np.abs(a.astype(np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-30))
