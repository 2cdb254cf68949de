#!/usr/bin/env python3
"""The baseline for Rampart's smoothing cost: the same batches through Python onnxruntime.

What Rampart's `cargo bench -p rampart-model --bench smoothing` measures per request (one row, n Gaussian-noise
copies at sigma = 0.25 scored in batches of at most 1000 rows, argmax votes, the binomial test), and what
`rampart certify` does per row (n0 = 100 selection + n = 100000 estimation samples), done here with numpy noise
and onnxruntime on one intra-op thread (tract runs on one thread too). Prints one line per case and the
median time.

Setup (a venv under target/, as ../shared/bench does):
    python3 -m venv target/bench-venv
    target/bench-venv/bin/pip install onnxruntime numpy
    target/bench-venv/bin/python bench/smoothing_ort.py
"""

import json
import math
import pathlib
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

MODELS = pathlib.Path(__file__).resolve().parent.parent / "crates/rampart-model/tests/models"
SIGMA = 0.25
MAX_BATCH = 1000


def session(name):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(MODELS / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])


def sample_row(name, width):
    expected = json.loads((MODELS / f"{name}.expected.json").read_text())
    return np.asarray(expected["sample_input"]["data"][:width], dtype=np.float32)


def probabilities(out):
    p = out[1]
    if isinstance(p, list):  # ZipMap: a list of dicts
        p = np.array([[d[k] for k in sorted(d)] for d in p], dtype=np.float32)
    return np.asarray(p)


def counts(sess, x, n, rng, classes):
    """Votes per class over n noisy copies of x, in batches of at most MAX_BATCH rows."""
    name = sess.get_inputs()[0].name
    votes = np.zeros(classes, dtype=np.int64)
    left = n
    while left > 0:
        rows = min(left, MAX_BATCH)
        batch = x[None, :] + SIGMA * rng.standard_normal((rows, x.size), dtype=np.float32)
        p = probabilities(sess.run(None, {name: batch}))
        votes += np.bincount(p.argmax(axis=1), minlength=classes)
        left -= rows
    return votes


def binom_test_half(n_a, n_b):
    """Two-sided binomial test of n_a out of n_a + n_b against 1/2 (exact, in log space)."""
    n = n_a + n_b
    k = min(n_a, n_b)
    log_half_n = -n * math.log(2)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n) for i in range(k + 1))
    return min(1.0, 2 * tail)


def smoothed_predict(sess, x, n, rng, classes):
    c = counts(sess, x, n, rng, classes)
    top2 = np.sort(c)[-2:]
    return binom_test_half(int(top2[1]), int(top2[0]))


def timeit(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    rng = np.random.default_rng(0)
    for name in ["breast_cancer_mlp", "digits_mlp"]:
        sess = session(name)
        width = sess.get_inputs()[0].shape[1]
        x = sample_row(name, width)
        classes = probabilities(sess.run(None, {sess.get_inputs()[0].name: x[None, :]})).shape[1]
        plain = timeit(lambda: sess.run(None, {sess.get_inputs()[0].name: x[None, :]}), 2000)
        print(f"{name}/plain: {plain * 1e6:.1f} us")
        for n in [100, 1000]:
            t = timeit(lambda: smoothed_predict(sess, x, n, rng, classes), 300 if n == 100 else 100)
            print(f"{name}/n={n}: {t * 1e6:.1f} us")
    if "--certify" in sys.argv:
        sess = session("digits_mlp")
        x = sample_row("digits_mlp", 64)
        t = timeit(lambda: (counts(sess, x, 100, rng, 10), counts(sess, x, 100_000, rng, 10)), 5)
        print(f"digits_mlp/certify n0=100 n=100000: {t:.3f} s per row, {1 / t:.2f} rows/s")


if __name__ == "__main__":
    main()
