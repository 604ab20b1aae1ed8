#!/usr/bin/env python3
"""Writes an AffectNet-format training.csv with as many rows as the real one
(414,799), landmarks included, for the stratification benchmark. Only the
table is made: no images.

    make_big_csv.py OUT.csv [--rows 414799] [--seed 0]
"""
import argparse

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--rows", type=int, default=414_799)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    n = a.rows
    # Arousal piles up near 0 and a tenth of rows are unusable, as in AffectNet.
    valence = np.clip(rng.normal(0.15, 0.45, n), -1, 1).round(6)
    arousal = np.clip(rng.normal(0.1, 0.3, n), -1, 1).round(6)
    expression = rng.integers(0, 11, n)
    bad = expression >= 9
    valence[bad] = -2
    arousal[bad] = -2
    size = rng.integers(50, 1500, n)
    x = rng.integers(0, 300, n)
    y = rng.integers(0, 300, n)
    # A thousand distinct landmark strings, cycled: the text volume of the real file
    # without spending minutes formatting random numbers.
    landmarks = [";".join(f"{v:.2f}" for v in rng.uniform(0, 1000, 136)) for _ in range(1000)]
    with open(a.out, "w") as f:
        f.write("subDirectory_filePath,face_x,face_y,face_width,face_height,"
                "facial_landmarks,expression,valence,arousal\n")
        for i in range(n):
            lm = landmarks[i % 1000]
            f.write(f"{i % 1000}/{i:040x}.jpg,{x[i]},{y[i]},{size[i]},{size[i]},{lm},"
                    f"{expression[i]},{valence[i]},{arousal[i]}\n")


if __name__ == "__main__":
    main()
