"""Correctness of every formulation on small shapes, odd and even sides (fast)."""
import sys, dataclasses
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
import numpy as np
from bench import session
from forms import DW_FORMS, DX_FORMS, check_model
from ref import ref_dw, ref_dx, rel_err
from shapes import SHAPES
rng = np.random.default_rng(1)
bad = 0
seen = set()
for s0 in SHAPES:
    for h in (7, 8):
        sh = dataclasses.replace(s0, n=8, h=h, cin=min(s0.cin, 5) if s0.g == 1 else 4,
                                 cout=min(s0.cout, 6) if s0.g == 1 else 4,
                                 g=1 if s0.g == 1 else 4, dx=True)
        key = (sh.cin == 1, sh.k, sh.s, sh.p, sh.g > 1, h)
        if key in seen: continue
        seen.add(key)
        x = rng.standard_normal((sh.n, sh.cin, sh.h, sh.h), dtype=np.float32)
        dy = rng.standard_normal((sh.n, sh.cout, sh.ho, sh.ho), dtype=np.float32)
        w = rng.standard_normal((sh.cout, sh.cin // sh.g, sh.k, sh.k), dtype=np.float32)
        for grad, forms, feeds, ref in (("dW", DW_FORMS, {"X": x, "dY": dy}, ref_dw(sh, x, dy)),
                                        ("dX", DX_FORMS, {"dY": dy, "W": w}, ref_dx(sh, dy, w))):
            for name, (ok, build) in forms.items():
                if not ok(sh): continue
                o = session(check_model(build(sh)), 1).run(None, feeds)[0]
                e = rel_err(o, ref)
                flag = "OK " if e < 1e-4 else "BAD"
                bad += e >= 1e-4
                print(f"{flag} {sh.desc():40s} {grad} {name:16s} {e:.1e}")
print("bad:", bad)
