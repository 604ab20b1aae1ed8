"""Every distinct conv layer of valar's `resnet` and `mobilenet` at batch 64, 48x48 grey input.

Read off crates/valar-engine/src/models/{resnet,mobilenet}.rs. `count` is how many times the
network uses the shape; `dx` is whether the training step needs the input gradient (the stem's
input is the data, so it does not).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    name: str
    net: str
    cin: int
    cout: int
    k: int
    s: int
    p: int
    g: int
    h: int  # input side (square)
    count: int
    dx: bool = True
    n: int = 64

    @property
    def ho(self):
        return (self.h + 2 * self.p - self.k) // self.s + 1

    @property
    def depthwise(self):
        return self.g > 1 and self.cin == self.g and self.cout == self.g

    @property
    def kind(self):
        if self.cin == 1:
            return f"stem {self.k}x{self.k} s{self.s} (Cin=1)"
        if self.depthwise:
            return f"depthwise {self.k}x{self.k} s{self.s}"
        return f"{self.k}x{self.k} s{self.s}"

    def desc(self):
        g = f" g{self.g}" if self.g > 1 else ""
        return (f"{self.cin}->{self.cout} {self.k}x{self.k} s{self.s} p{self.p}{g} "
                f"{self.h}->{self.ho}")

    def flops(self):
        """Multiply-adds x2 of one dW (= one dX) computation."""
        return 2 * self.n * self.ho * self.ho * self.cout * (self.cin // self.g) * self.k * self.k


R = "resnet"
M = "mobilenet"
SHAPES = [
    # resnet: 3x3 stem at stride 1, stages 32-64-128-256 of 2 basic blocks, 1x1 strided shortcuts
    Shape("r.conv1", R, 1, 32, 3, 1, 1, 1, 48, 1, dx=False),
    Shape("r.l1", R, 32, 32, 3, 1, 1, 1, 48, 4),
    Shape("r.l2.0.conv1", R, 32, 64, 3, 2, 1, 1, 48, 1),
    Shape("r.l2.0.ds", R, 32, 64, 1, 2, 0, 1, 48, 1),
    Shape("r.l2", R, 64, 64, 3, 1, 1, 1, 24, 3),
    Shape("r.l3.0.conv1", R, 64, 128, 3, 2, 1, 1, 24, 1),
    Shape("r.l3.0.ds", R, 64, 128, 1, 2, 0, 1, 24, 1),
    Shape("r.l3", R, 128, 128, 3, 1, 1, 1, 12, 3),
    Shape("r.l4.0.conv1", R, 128, 256, 3, 2, 1, 1, 12, 1),
    Shape("r.l4.0.ds", R, 128, 256, 1, 2, 0, 1, 12, 1),
    Shape("r.l4", R, 256, 256, 3, 1, 1, 1, 6, 3),
    # mobilenet: 3x3 stride-2 stem, 7 depthwise-separable blocks
    Shape("m.conv1", M, 1, 32, 3, 2, 1, 1, 48, 1, dx=False),
    Shape("m.b0.dw", M, 32, 32, 3, 1, 1, 32, 24, 1),
    Shape("m.b0.pw", M, 32, 64, 1, 1, 0, 1, 24, 1),
    Shape("m.b1.dw", M, 64, 64, 3, 2, 1, 64, 24, 1),
    Shape("m.b1.pw", M, 64, 128, 1, 1, 0, 1, 12, 1),
    Shape("m.b2.dw", M, 128, 128, 3, 1, 1, 128, 12, 1),
    Shape("m.b2.pw", M, 128, 128, 1, 1, 0, 1, 12, 1),
    Shape("m.b3.dw", M, 128, 128, 3, 2, 1, 128, 12, 1),
    Shape("m.b3.pw", M, 128, 256, 1, 1, 0, 1, 6, 1),
    Shape("m.b4.dw", M, 256, 256, 3, 1, 1, 256, 6, 1),
    Shape("m.b4.pw", M, 256, 256, 1, 1, 0, 1, 6, 1),
    Shape("m.b5.dw", M, 256, 256, 3, 2, 1, 256, 6, 1),
    Shape("m.b5.pw", M, 256, 512, 1, 1, 0, 1, 3, 1),
    Shape("m.b6.dw", M, 512, 512, 3, 1, 1, 512, 3, 1),
    Shape("m.b6.pw", M, 512, 512, 1, 1, 0, 1, 3, 1),
]
BY_NAME = {s.name: s for s in SHAPES}
