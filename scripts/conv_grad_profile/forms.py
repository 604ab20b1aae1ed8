"""ONNX graphs (opset 18, IR 8, as valar emits) for a convolution's weight and input gradients.

Every builder takes a Shape and returns a ModelProto with inputs X [N,Cin,H,W], dY [N,Cout,Ho,Wo]
(and W [Cout,Cin/g,k,k] for dX) and one output, dW or dX. `DW_FORMS` / `DX_FORMS` map a name to
(applies(shape) -> bool, builder).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

I64_MIN = np.iinfo(np.int64).min


class G:
    """A tiny GraphBuilder like valar's: fresh names, int64 constants as initializers."""

    def __init__(self):
        self.nodes, self.inits, self.i = [], [], 0

    def fresh(self, p):
        self.i += 1
        return f"{p}{self.i}"

    def const(self, vals):
        name = self.fresh("c")
        self.inits.append(numpy_helper.from_array(np.array(vals, dtype=np.int64), name))
        return name

    def node(self, op, inputs, **attrs):
        out = self.fresh(op.lower() + "_")
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def reshape(self, x, shape):
        return self.node("Reshape", [x, self.const(shape)])

    def transpose(self, x, perm):
        return self.node("Transpose", [x], perm=list(perm))

    def slice(self, x, starts, ends, axes, steps):
        return self.node("Slice", [x, self.const(starts), self.const(ends), self.const(axes),
                                   self.const(steps)])

    def pad(self, x, pads):
        return self.node("Pad", [x, self.const(pads)])

    def reduce(self, op, x, axes, keep=False):
        return self.node(op, [x, self.const(axes)], keepdims=int(keep))

    def unsqueeze(self, x, axes):
        return self.node("Unsqueeze", [x, self.const(axes)])

    def model(self, inputs, out, out_shape):
        self.nodes[-1].output[0] = "out"
        for n in self.nodes:  # rename consumers too (none: out is last)
            pass
        vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
        g = helper.make_graph(self.nodes, "g", vi,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
        m.ir_version = 8
        return m


def _io_dw(sh):
    return [("X", [sh.n, sh.cin, sh.h, sh.h]), ("dY", [sh.n, sh.cout, sh.ho, sh.ho])]


def _io_dx(sh):
    return _io_dw(sh)[1:] + [("W", [sh.cout, sh.cin // sh.g, sh.k, sh.k])]


def _dw_shape(sh):
    return [sh.cout, sh.cin // sh.g, sh.k, sh.k]


def _tap(g, sh, src, kh, kw, axes):
    """valar's ConvBackward::tap: the padded input seen by tap (kh, kw), strided."""
    k, s, p, ho = sh.k, sh.s, sh.p, sh.ho
    if k == 1 and s == 1 and p == 0:
        return src
    return g.slice(src, [kh, kw], [kh + s * (ho - 1) + 1, kw + s * (ho - 1) + 1], axes, [s, s])


# ---------------------------------------------------------------------------------------------
# dW formulations

def dw_today(sh):
    """Exactly what conv2d.rs's weight_grad emits today (dispatching as it does)."""
    if sh.g == 1 and sh.cin == 1 and sh.s == 1:
        return dw_batch_as_channels(sh)
    if sh.depthwise:
        return dw_dw_taps(sh)
    return dw_taps_gemm(sh)


def dw_batch_as_channels(sh):
    g = G()
    xr = g.reshape("X", [1, sh.n, sh.h, sh.h])
    dyt = g.transpose("dY", [1, 0, 2, 3])
    gw = g.node("Conv", [xr, dyt], pads=[sh.p] * 4)
    g.reshape(gw, [sh.cout, 1, sh.k, sh.k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_dw_taps(sh):
    """Depthwise today: k*k x (Slice, Mul, ReduceSum, ReduceSum), Concat."""
    g = G()
    k, p, c = sh.k, sh.p, sh.cout
    xp = g.pad("X", [0, 0, p, p, 0, 0, p, p]) if p > 0 else "X"
    taps = []
    for kh in range(k):
        for kw in range(k):
            sl = _tap(g, sh, xp, kh, kw, [2, 3])
            prod = g.node("Mul", [sl, "dY"])
            flat = g.reshape(prod, [sh.n, c, sh.ho * sh.ho])
            first = g.reduce("ReduceSum", flat, [2])
            per = g.reduce("ReduceSum", first, [0])
            taps.append(g.unsqueeze(per, [1]))
    cat = g.node("Concat", taps, axis=1)
    g.reshape(cat, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_taps_gemm(sh):
    """General today (groups = 1 only here): k*k x (Slice of padded NHWC X, MatMul), Concat."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    m = sh.n * sh.ho * sh.ho
    xn = g.transpose("X", [0, 2, 3, 1])
    xp = g.pad(xn, [0, p, p, 0, 0, p, p, 0]) if p > 0 else xn
    dyt = g.transpose("dY", [1, 0, 2, 3])
    dym = g.reshape(dyt, [cout, m])
    taps = []
    for kh in range(k):
        for kw in range(k):
            sl = _tap(g, sh, xp, kh, kw, [1, 2])
            sm = g.reshape(sl, [m, cin])
            taps.append(g.unsqueeze(g.node("MatMul", [dym, sm]), [2]))
    cat = g.node("Concat", taps, axis=2)
    g.reshape(cat, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def _kprime(sh):
    return sh.h + 2 * sh.p - sh.s * (sh.ho - 1)


def dw_conv(sh):
    """One Conv: X as [Cin, N, H, W] (batch = input channel, channels = samples), dY as the kernel
    [Cout, N, Ho, Wo], pads = forward pads, dilations = forward stride -> [Cin, Cout, k', k'];
    Slice to k x k when k' > k; Transpose to [Cout, Cin, k, k]. Depthwise: X as [1, C*N, H, W],
    group = C, kernel dY as [C, N, Ho, Wo] -> [1, C, k', k']."""
    g = G()
    k, s, p, n = sh.k, sh.s, sh.p, sh.n
    kp = _kprime(sh)
    dyt = g.transpose("dY", [1, 0, 2, 3])  # [Cout, N, Ho, Wo]
    attrs = dict(pads=[p] * 4)
    if s > 1:
        attrs["dilations"] = [s, s]
    if sh.depthwise:
        xt = g.transpose("X", [1, 0, 2, 3])
        xr = g.reshape(xt, [1, sh.cin * n, sh.h, sh.h])
        y = g.node("Conv", [xr, dyt], group=sh.cin, **attrs)  # [1, C, k', k']
        if kp > k:
            y = g.slice(y, [0, 0], [k, k], [2, 3], [1, 1])
        g.reshape(y, [sh.cout, 1, k, k])
    else:
        assert sh.g == 1
        xt = g.reshape("X", [1, n, sh.h, sh.h]) if sh.cin == 1 else g.transpose("X", [1, 0, 2, 3])
        y = g.node("Conv", [xt, dyt], **attrs)  # [Cin, Cout, k', k']
        if kp > k:
            y = g.slice(y, [0, 0], [k, k], [2, 3], [1, 1])
        if sh.cin == 1:
            g.reshape(y, [sh.cout, 1, k, k])
        else:
            g.transpose(y, [1, 0, 2, 3])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_im2col_mm(sh):
    """im2col in NHWC: Pad, k*k strided Slices Concat'ed on the channel axis -> [M, k*k*Cin];
    one MatMul with dY as [Cout, M]; Reshape [Cout, k, k, Cin]; Transpose to [Cout, Cin, k, k]."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    m = sh.n * sh.ho * sh.ho
    xn = g.transpose("X", [0, 2, 3, 1])
    xp = g.pad(xn, [0, p, p, 0, 0, p, p, 0]) if p > 0 else xn
    sl = [_tap(g, sh, xp, kh, kw, [1, 2]) for kh in range(k) for kw in range(k)]
    cols = g.node("Concat", sl, axis=3) if len(sl) > 1 else sl[0]
    cols = g.reshape(cols, [m, k * k * cin])
    dym = g.reshape(g.transpose("dY", [1, 0, 2, 3]), [cout, m])
    y = g.node("MatMul", [dym, cols])
    y = g.reshape(y, [cout, k, k, cin])
    g.transpose(y, [0, 3, 1, 2])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_im2col_gemm(sh):
    """im2col channel-major: X as [Cin, N, H, W], Pad, k*k strided Slices Concat'ed on axis 1 ->
    [Cin, k*k*N, Ho, Wo] = [Cin*k*k, M]; Gemm(dY as [Cout, M], cols, transB=1) -> [Cout, Cin*k*k];
    Reshape to [Cout, Cin, k, k] (no final transpose)."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    m = sh.n * sh.ho * sh.ho
    xt = g.reshape("X", [1, sh.n, sh.h, sh.h]) if cin == 1 else g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    sl = [_tap(g, sh, xp, kh, kw, [2, 3]) for kh in range(k) for kw in range(k)]
    cols = g.node("Concat", sl, axis=1) if len(sl) > 1 else sl[0]
    cols = g.reshape(cols, [cin * k * k, m])
    dym = g.reshape(g.transpose("dY", [1, 0, 2, 3]), [cout, m])
    y = g.node("Gemm", [dym, cols], transB=1)
    g.reshape(y, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_einsum(sh):
    """im2col in NCHW without any transpose: Pad, k*k Slices Unsqueeze'd and Concat'ed on axis 2 ->
    [N, Cin*k*k, P]; Einsum('nop,nkp->ok', dY as [N, Cout, P], cols)."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    P = sh.ho * sh.ho
    xp = g.pad("X", [0, 0, p, p, 0, 0, p, p]) if p > 0 else "X"
    sl = [g.unsqueeze(_tap(g, sh, xp, kh, kw, [2, 3]), [2]) for kh in range(k) for kw in range(k)]
    cols = g.node("Concat", sl, axis=2) if len(sl) > 1 else sl[0]
    cols = g.reshape(cols, [sh.n, cin * k * k, P])
    dyr = g.reshape("dY", [sh.n, cout, P])
    y = g.node("Einsum", [dyr, cols], equation="nop,nkp->ok")
    g.reshape(y, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_dw_cols_mulsum(sh):
    """Depthwise: NCHW cols [N, C, k*k, Ho, Wo] (Pad, Slices Unsqueeze'd + Concat axis 2), one Mul
    with dY Unsqueeze'd to [N, C, 1, Ho, Wo], one ReduceSum over axes [0, 3, 4] -> [C, k*k]."""
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    xp = g.pad("X", [0, 0, p, p, 0, 0, p, p]) if p > 0 else "X"
    sl = [g.unsqueeze(_tap(g, sh, xp, kh, kw, [2, 3]), [2]) for kh in range(k) for kw in range(k)]
    cols = g.node("Concat", sl, axis=2)
    prod = g.node("Mul", [cols, g.unsqueeze("dY", [2])])
    r = g.reduce("ReduceSum", prod, [0, 3, 4])
    g.reshape(r, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_dw_cols_matmul(sh):
    """Depthwise: X as [C, N, H, W], Pad, Slices Concat'ed on axis 1 -> [C, k*k, M]; batched
    MatMul with dY as [C, M, 1] -> [C, k*k, 1]."""
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    m = sh.n * sh.ho * sh.ho
    xt = g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    sl = [_tap(g, sh, xp, kh, kw, [2, 3]) for kh in range(k) for kw in range(k)]
    cols = g.reshape(g.node("Concat", sl, axis=1), [c, k * k, m])
    dyc = g.reshape(g.transpose("dY", [1, 0, 2, 3]), [c, m, 1])
    y = g.node("MatMul", [cols, dyc])
    g.reshape(y, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def _general(sh):
    return sh.g == 1


DW_FORMS = {
    "today": (lambda sh: True, dw_today),
    "taps_gemm": (lambda sh: sh.g == 1 and sh.cin == 1 and sh.s == 1, dw_taps_gemm),
    "conv": (lambda sh: not (sh.g == 1 and sh.cin == 1 and sh.s == 1), dw_conv),  # = today there
    "im2col_mm": (_general, dw_im2col_mm),
    "im2col_gemm": (_general, dw_im2col_gemm),
    "einsum": (_general, dw_einsum),
    "dw_cols_mulsum": (lambda sh: sh.depthwise, dw_dw_cols_mulsum),
    "dw_cols_matmul": (lambda sh: sh.depthwise, dw_dw_cols_matmul),
}


# ---------------------------------------------------------------------------------------------
# dX formulations

def _flipped_kernel(g, sh):
    """W transposed per group ([Cin, Cout/g, k, k]) and flipped in both spatial axes."""
    if sh.g == 1:
        wt = g.transpose("W", [1, 0, 2, 3])
    elif sh.depthwise:
        wt = "W"
    else:
        raise NotImplementedError
    return g.slice(wt, [-1, -1], [I64_MIN, I64_MIN], [2, 3], [-1, -1])


def dx_conv_s1(g, sh):
    q = sh.k - 1 - sh.p
    attrs = dict(kernel_shape=[sh.k, sh.k], pads=[q] * 4)
    if sh.g != 1:
        attrs["group"] = sh.g
    return g.node("Conv", ["dY", _flipped_kernel(g, sh)], **attrs)


def dx_convtranspose_node(g, sh):
    k, s, p = sh.k, sh.s, sh.p
    op = sh.h + 2 * p - k - s * (sh.ho - 1)
    return g.node("ConvTranspose", ["dY", "W"], kernel_shape=[k, k], pads=[p] * 4,
                  strides=[s, s], output_padding=[op, op], group=sh.g)


def dx_today(sh):
    g = G()
    if sh.s == 1:
        dx_conv_s1(g, sh)
    else:
        dx_convtranspose_node(g, sh)
    return g.model(_io_dx(sh), "out", [sh.n, sh.cin, sh.h, sh.h])


def dx_convtranspose(sh):
    g = G()
    dx_convtranspose_node(g, sh)
    return g.model(_io_dx(sh), "out", [sh.n, sh.cin, sh.h, sh.h])


def _zero_insert(g, t, c, ho, s):
    """[N, c, ho, ho] -> [N, c, ho*s, ho*s] with t at (s*i, s*j) and zeros elsewhere."""
    r = g.reshape(t, [-1, c, ho, 1, ho, 1])
    r = g.pad(r, [0, 0, 0, 0, 0, 0, 0, 0, 0, s - 1, 0, s - 1])
    return g.reshape(r, [-1, c, ho * s, ho * s])


def dx_zins_conv(sh):
    """Stride > 1: zero-insert dY (Reshape, Pad, Reshape) then a stride-1 Conv with the flipped
    per-group-transposed kernel, pads [k-1-p, k-1-p, H+p-Ho*s, H+p-Ho*s]."""
    g = G()
    k, s, p = sh.k, sh.s, sh.p
    z = _zero_insert(g, "dY", sh.cout, sh.ho, s)
    q, e = k - 1 - p, sh.h + p - sh.ho * s
    wf = _flipped_kernel(g, sh)
    if e < 0:
        z = g.slice(z, [0, 0], [sh.ho * s + e] * 2, [2, 3], [1, 1])
        e = 0
    attrs = dict(kernel_shape=[k, k], pads=[q, q, e, e])
    if sh.g != 1:
        attrs["group"] = sh.g
    g.node("Conv", [z, wf], **attrs)
    return g.model(_io_dx(sh), "out", [sh.n, sh.cin, sh.h, sh.h])


def dx_conv_zins(sh):
    """1x1 at stride > 1: the 1x1 Conv with W transposed on the small dY, then zero-insert."""
    assert sh.k == 1 and sh.p == 0 and sh.g == 1
    g = G()
    wt = g.transpose("W", [1, 0, 2, 3])
    t = g.node("Conv", ["dY", wt], kernel_shape=[1, 1])
    z = _zero_insert(g, t, sh.cin, sh.ho, sh.s)
    e = sh.h - sh.ho * sh.s
    if e > 0:
        z = g.pad(z, [0, 0, 0, 0, 0, 0, e, e])
    elif e < 0:
        z = g.slice(z, [0, 0], [sh.h, sh.h], [2, 3], [1, 1])
    else:
        g.nodes[-1]  # already last
    return g.model(_io_dx(sh), "out", [sh.n, sh.cin, sh.h, sh.h])


DX_FORMS = {
    "today": (lambda sh: sh.dx, dx_today),
    "convT": (lambda sh: sh.dx and sh.s == 1, dx_convtranspose),  # = today at stride > 1
    "zins_conv": (lambda sh: sh.dx and sh.s > 1, dx_zins_conv),
    "conv_zins": (lambda sh: sh.dx and sh.s > 1 and sh.k == 1, dx_conv_zins),
}


def check_model(m):
    onnx.checker.check_model(m)
    return m


# ---------------------------------------------------------------------------------------------
# Batch-chunked im2col: the columns of B samples at a time stay in cache; Gemm accumulates.

def dw_chunked(sh, b):
    """X as [Cin, N, H, W] (Transpose), Pad; dY as [Cout, N, Ho, Wo] (Transpose). For each chunk
    of b samples: k*k Slices of the chunk Concat'ed on axis 1 -> [Cin, k*k*b, Ho, Wo] = Reshape
    [Cin*k*k, b*P]; dY chunk Slice -> Reshape [Cout, b*P]; Gemm(dYc, cols, acc, transB=1, beta=1)
    -> [Cout, Cin*k*k]; finally Reshape [Cout, Cin, k, k]."""
    assert sh.g == 1 and sh.n % b == 0
    g = G()
    k, s, p, cin, cout, ho = sh.k, sh.s, sh.p, sh.cin, sh.cout, sh.ho
    e = s * (ho - 1) + 1
    xt = g.reshape("X", [1, sh.n, sh.h, sh.h]) if cin == 1 else g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    dyt = g.transpose("dY", [1, 0, 2, 3])
    acc = None
    for n0 in range(0, sh.n, b):
        sl = [g.slice(xp, [n0, kh, kw], [n0 + b, kh + e, kw + e], [1, 2, 3], [1, s, s])
              for kh in range(k) for kw in range(k)]
        cols = g.node("Concat", sl, axis=1) if len(sl) > 1 else sl[0]
        cols = g.reshape(cols, [cin * k * k, b * ho * ho])
        dyc = g.reshape(g.slice(dyt, [n0], [n0 + b], [1], [1]), [cout, b * ho * ho])
        ins = [dyc, cols] + ([acc] if acc else [])
        acc = g.node("Gemm", ins, transB=1, **({"beta": 1.0} if acc else {}))
    g.reshape(acc, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_chunked_nchw1(sh):
    """Per sample without any transpose: Pad X (NCHW); Split dY into N [1, Cout, Ho, Wo]; per
    sample n: k*k Slices of Xp [n:n+1] Concat'ed on axis 2 -> [1, Cin, k*k*Ho, Wo] = Reshape
    [Cin*k*k, P]; Gemm(dY_n as [Cout, P], cols, acc, transB=1)."""
    assert sh.g == 1
    g = G()
    k, s, p, cin, cout, ho = sh.k, sh.s, sh.p, sh.cin, sh.cout, sh.ho
    e = s * (ho - 1) + 1
    xp = g.pad("X", [0, 0, p, p, 0, 0, p, p]) if p > 0 else "X"
    outs = [g.fresh("dys") for _ in range(sh.n)]
    g.nodes.append(helper.make_node("Split", ["dY"], outs, axis=0, num_outputs=sh.n))
    acc = None
    for n0 in range(sh.n):
        sl = [g.slice(xp, [n0, kh, kw], [n0 + 1, kh + e, kw + e], [0, 2, 3], [1, s, s])
              for kh in range(k) for kw in range(k)]
        cols = g.node("Concat", sl, axis=2) if len(sl) > 1 else sl[0]
        cols = g.reshape(cols, [cin * k * k, ho * ho])
        dyc = g.reshape(outs[n0], [cout, ho * ho])
        ins = [dyc, cols] + ([acc] if acc else [])
        acc = g.node("Gemm", ins, transB=1, **({"beta": 1.0} if acc else {}))
    g.reshape(acc, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


for _b in (2, 8):
    DW_FORMS[f"chunk{_b}"] = (lambda sh, b=_b: sh.g == 1 and sh.n % b == 0, lambda sh, b=_b: dw_chunked(sh, b))
DW_FORMS["chunk1_nchw"] = (lambda sh: sh.g == 1, dw_chunked_nchw1)


# ---------------------------------------------------------------------------------------------
# More depthwise and tap variants

def dw_dw_taps_cnhw(sh):
    """Depthwise taps on channel-major data: X as [C, N, H, W] (Transpose), Pad; dY as
    [C, N, Ho, Wo] (Transpose); per tap Slice, Mul, one ReduceSum over the trailing axes
    [1, 2, 3] (keepdims=1 -> [C, 1, 1, 1]); Concat the taps on axis 1 -> [C, k*k, 1, 1]."""
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    xt = g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    dyt = g.transpose("dY", [1, 0, 2, 3])
    taps = []
    for kh in range(k):
        for kw in range(k):
            sl = _tap(g, sh, xp, kh, kw, [2, 3])
            taps.append(g.reduce("ReduceSum", g.node("Mul", [sl, dyt]), [1, 2, 3], keep=True))
    cat = g.node("Concat", taps, axis=1)
    g.reshape(cat, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_dw_taps_nchw1(sh):
    """Today's depthwise taps with one ReduceSum over axes [0, 2, 3] instead of Reshape + two."""
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    xp = g.pad("X", [0, 0, p, p, 0, 0, p, p]) if p > 0 else "X"
    taps = []
    for kh in range(k):
        for kw in range(k):
            sl = _tap(g, sh, xp, kh, kw, [2, 3])
            r = g.reduce("ReduceSum", g.node("Mul", [sl, "dY"]), [0, 2, 3])
            taps.append(g.unsqueeze(r, [1]))
    cat = g.node("Concat", taps, axis=1)
    g.reshape(cat, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_dw_taps_matmul(sh):
    """Depthwise: X as [C, N, H, W], Pad; dY as [C, 1, M]; per tap Slice -> Reshape [C, M, 1],
    batched MatMul -> [C, 1, 1]; Concat on axis 1 -> [C, k*k, 1]."""
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    m = sh.n * sh.ho * sh.ho
    xt = g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    dyc = g.reshape(g.transpose("dY", [1, 0, 2, 3]), [c, 1, m])
    taps = [g.node("MatMul", [dyc, g.reshape(_tap(g, sh, xp, kh, kw, [2, 3]), [c, m, 1])])
            for kh in range(k) for kw in range(k)]
    cat = g.node("Concat", taps, axis=1)
    g.reshape(cat, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_taps_gemm_tA(sh):
    """Today's taps, but dY as NHWC [M, Cout] and Gemm(transA=1) instead of MatMul."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    m = sh.n * sh.ho * sh.ho
    xn = g.transpose("X", [0, 2, 3, 1])
    xp = g.pad(xn, [0, p, p, 0, 0, p, p, 0]) if p > 0 else xn
    dyn = g.reshape(g.transpose("dY", [0, 2, 3, 1]), [m, cout])
    taps = []
    for kh in range(k):
        for kw in range(k):
            sm = g.reshape(_tap(g, sh, xp, kh, kw, [1, 2]), [m, cin])
            taps.append(g.unsqueeze(g.node("Gemm", [dyn, sm], transA=1), [2]))
    cat = g.node("Concat", taps, axis=2) if len(taps) > 1 else taps[0]
    g.reshape(cat, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


DW_FORMS["dw_taps_cnhw"] = (lambda sh: sh.depthwise, dw_dw_taps_cnhw)
DW_FORMS["dw_taps_nchw1"] = (lambda sh: sh.depthwise, dw_dw_taps_nchw1)
DW_FORMS["dw_taps_matmul"] = (lambda sh: sh.depthwise, dw_dw_taps_matmul)
DW_FORMS["taps_gemm_tA"] = (lambda sh: sh.g == 1 and sh.cin > 1, dw_taps_gemm_tA)


def dw_dw_flat(sh):
    """Depthwise, stride 1: channel-major flat planes so every tap is one contiguous Slice.
    X -> Transpose [C, N, H, W] -> Pad (p on H, W) -> Reshape [C, L] (L = N*Hp*Wp);
    dY -> Transpose [C, N, Ho, Wo] -> Pad (k-1 zeros at the end of H and W) -> Reshape [C, L]
    -> Slice [0, L') with L' = L - (k-1)*(Wp+1). Per tap d = kh*Wp + kw: Slice X [d, d+L'),
    Mul, ReduceSum axis 1 keepdims=1 -> [C, 1]; Concat axis 1 -> [C, k*k]; Reshape [C,1,k,k]."""
    assert sh.s == 1 and sh.depthwise
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    hp = sh.h + 2 * p
    L = sh.n * hp * hp
    Lq = L - (k - 1) * (hp + 1)
    xp = g.reshape(g.pad(g.transpose("X", [1, 0, 2, 3]), [0, 0, p, p, 0, 0, p, p]), [c, L])
    dyg = g.pad(g.transpose("dY", [1, 0, 2, 3]), [0, 0, 0, 0, 0, 0, k - 1, k - 1])
    a = g.slice(g.reshape(dyg, [c, L]), [0], [Lq], [1], [1])
    taps = []
    for kh in range(k):
        for kw in range(k):
            d = kh * hp + kw
            b = g.slice(xp, [d], [d + Lq], [1], [1])
            taps.append(g.reduce("ReduceSum", g.node("Mul", [a, b]), [1], keep=True))
    g.reshape(g.node("Concat", taps, axis=1), [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_dw_flat_mm(sh):
    """As dw_flat, but the k*k taps' contiguous Slices are Concat'ed -> [C, k*k, L'] and one
    batched MatMul with dY as [C, L', 1] gives [C, k*k, 1]."""
    assert sh.s == 1 and sh.depthwise
    g = G()
    k, p, c = sh.k, sh.p, sh.cin
    hp = sh.h + 2 * p
    L = sh.n * hp * hp
    Lq = L - (k - 1) * (hp + 1)
    xp = g.reshape(g.pad(g.transpose("X", [1, 0, 2, 3]), [0, 0, p, p, 0, 0, p, p]), [c, 1, L])
    dyg = g.pad(g.transpose("dY", [1, 0, 2, 3]), [0, 0, 0, 0, 0, 0, k - 1, k - 1])
    a = g.reshape(g.slice(g.reshape(dyg, [c, L]), [0], [Lq], [1], [1]), [c, Lq, 1])
    sl = [g.slice(xp, [kh * hp + kw], [kh * hp + kw + Lq], [2], [1])
          for kh in range(k) for kw in range(k)]
    y = g.node("MatMul", [g.node("Concat", sl, axis=1), a])
    g.reshape(y, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


DW_FORMS["dw_flat"] = (lambda sh: sh.depthwise and sh.s == 1, dw_dw_flat)
DW_FORMS["dw_flat_mm"] = (lambda sh: sh.depthwise and sh.s == 1, dw_dw_flat_mm)


def dw_dw_conv_dwise(sh):
    """Depthwise as a truly depthwise Conv over (n, c) pairs, no transposes:
    X Reshape [1, N*C, H, W]; dY Reshape [N*C, 1, Ho, Wo] as the kernel;
    Conv(group=N*C, pads=p, dilations=s) -> [1, N*C, k', k']; Reshape [N, C, k', k'];
    ReduceSum axis 0 (keepdims=0) -> [C, k', k']; Slice to k x k if k' > k; Reshape [C, 1, k, k]."""
    assert sh.depthwise
    g = G()
    k, s, p, n, c = sh.k, sh.s, sh.p, sh.n, sh.cin
    kp = _kprime(sh)
    xr = g.reshape("X", [1, n * c, sh.h, sh.h])
    kr = g.reshape("dY", [n * c, 1, sh.ho, sh.ho])
    attrs = dict(pads=[p] * 4, group=n * c)
    if s > 1:
        attrs["dilations"] = [s, s]
    y = g.node("Conv", [xr, kr], **attrs)
    y = g.reduce("ReduceSum", g.reshape(y, [n, c, kp, kp]), [0])
    if kp > k:
        y = g.slice(y, [0, 0], [k, k], [1, 2], [1, 1])
    g.reshape(y, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


DW_FORMS["dw_conv_dwise"] = (lambda sh: sh.depthwise, dw_dw_conv_dwise)


def dw_im2col_t(sh):
    """Channel-major im2col as the left operand: X -> Transpose [Cin, N, H, W] -> Pad -> k*k
    strided Slices Concat'ed on axis 1 -> Reshape [Cin*k*k, M]; dY -> Transpose [0, 2, 3, 1] ->
    Reshape [M, Cout]; MatMul -> [Cin*k*k, Cout]; Transpose [1, 0]; Reshape [Cout, Cin, k, k]."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    m = sh.n * sh.ho * sh.ho
    xt = g.reshape("X", [1, sh.n, sh.h, sh.h]) if cin == 1 else g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    sl = [_tap(g, sh, xp, kh, kw, [2, 3]) for kh in range(k) for kw in range(k)]
    cols = g.node("Concat", sl, axis=1) if len(sl) > 1 else sl[0]
    cols = g.reshape(cols, [cin * k * k, m])
    dyn = g.reshape(g.transpose("dY", [0, 2, 3, 1]), [m, cout])
    y = g.transpose(g.node("MatMul", [cols, dyn]), [1, 0])
    g.reshape(y, [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


def dw_taps_cnhw(sh):
    """Taps with X channel-major: X -> Transpose [Cin, N, H, W] -> Pad; dY -> Transpose
    [0, 2, 3, 1] -> Reshape [M, Cout]; per tap Slice -> Reshape [Cin, M] -> MatMul -> [Cin, Cout]
    -> Unsqueeze 2; Concat axis 2 -> [Cin, Cout, k*k]; Transpose [1, 0, 2]; Reshape."""
    assert sh.g == 1
    g = G()
    k, p, cin, cout = sh.k, sh.p, sh.cin, sh.cout
    m = sh.n * sh.ho * sh.ho
    xt = g.transpose("X", [1, 0, 2, 3])
    xp = g.pad(xt, [0, 0, p, p, 0, 0, p, p]) if p > 0 else xt
    dyn = g.reshape(g.transpose("dY", [0, 2, 3, 1]), [m, cout])
    taps = [g.unsqueeze(g.node("MatMul", [g.reshape(_tap(g, sh, xp, kh, kw, [2, 3]), [cin, m]),
                                          dyn]), [2]) for kh in range(k) for kw in range(k)]
    cat = g.node("Concat", taps, axis=2) if len(taps) > 1 else taps[0]
    g.reshape(g.transpose(cat, [1, 0, 2]), [cout, cin, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


DW_FORMS["im2col_t"] = (lambda sh: sh.g == 1, dw_im2col_t)
DW_FORMS["taps_cnhw"] = (lambda sh: sh.g == 1 and sh.cin > 1, dw_taps_cnhw)


def dw_dw_conv1d(sh):
    """Depthwise, stride 1: the per-plane correlation as a 1-D depthwise Conv over flattened padded
    planes, so ONNX Runtime's im2col copies long rows instead of rows of k.
    X -> Pad [0,0,p,p,0,0,p,p] -> Reshape [1, N*C, 1, Hp*Wp];
    dY -> Pad [0,0,0,0,0,0,0,k-1] (W only) -> Reshape [N*C, Ho*Wp] -> Slice [0, Ho*Wp-(k-1)) on
    axis 1 -> Reshape [N*C, 1, 1, Lk] as the kernel;
    Conv(group=N*C) -> [1, N*C, 1, D] with D = (k-1)*Wp + k; Reshape [N, C*D]; ReduceSum axis 0
    -> [C*D]; Reshape [C, D]; Pad end of axis 1 to k*Wp; Reshape [C, k, Wp]; Slice axis 2 [0, k);
    Reshape [C, 1, k, k]."""
    assert sh.depthwise and sh.s == 1
    g = G()
    k, p, n, c = sh.k, sh.p, sh.n, sh.cin
    hp = sh.h + 2 * p
    lk = sh.ho * hp - (k - 1)
    d = (k - 1) * hp + k
    xr = g.reshape(g.pad("X", [0, 0, p, p, 0, 0, p, p]), [1, n * c, 1, hp * hp])
    dyp = g.reshape(g.pad("dY", [0, 0, 0, 0, 0, 0, 0, hp - sh.ho]), [n * c, sh.ho * hp])
    kr = g.reshape(g.slice(dyp, [0], [lk], [1], [1]), [n * c, 1, 1, lk])
    y = g.node("Conv", [xr, kr], group=n * c)
    y = g.reduce("ReduceSum", g.reshape(y, [n, c * d]), [0])
    y = g.pad(g.reshape(y, [c, d]), [0, 0, 0, k * hp - d])
    y = g.slice(g.reshape(y, [c, k, hp]), [0], [k], [2], [1])
    g.reshape(y, [c, 1, k, k])
    return g.model(_io_dw(sh), "out", _dw_shape(sh))


DW_FORMS["dw_conv1d"] = (lambda sh: sh.depthwise and sh.s == 1, dw_dw_conv1d)
