#!/usr/bin/env python3
"""Write a wrk Lua script that POSTs {"features": row} bodies drawn from a CSV (header row, last column label),
keeping only rows every Rampart layer lets through under BASELINE (the output of `rampart profile`): inside the
training range widened by 10 %, every |z| <= 3, Mahalanobis distance <= the baseline's p999 — so the benchmark
measures the full pipeline, not fast refusals. The Authorization header carries $BENCH_KEY.
Usage: make_bodies.py DATA.csv BASELINE.json OUT.lua [ROWS]"""
import csv
import json
import sys

import numpy as np

data, baseline_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
limit = int(sys.argv[4]) if len(sys.argv) > 4 else 50
b = json.load(open(baseline_path))
mean = np.array([f["mean"] for f in b["features"]])
std = np.array([f["std"] for f in b["features"]])
lo = np.array([f["min"] - 0.1 * (f["max"] - f["min"]) for f in b["features"]])
hi = np.array([f["max"] + 0.1 * (f["max"] - f["min"]) for f in b["features"]])
cov = np.array(b["covariance"]) + b["mahalanobis"]["ridge"] * np.eye(len(mean))
limit_d = b["mahalanobis"]["p999"]
rows = []
with open(data) as f:
    r = csv.reader(f)
    next(r)
    for row in r:
        x = np.array([float(v) for v in row[:-1]], dtype=np.float32).astype(np.float64)
        z = np.abs((x - mean) / np.where(std > 0, std, 1.0))
        d = float(np.sqrt((x - mean) @ np.linalg.solve(cov, x - mean)))
        if np.all(z <= 2.9) and np.all((x >= lo) & (x <= hi)) and d <= 0.95 * limit_d:
            rows.append([float(v) for v in row[:-1]])
        if len(rows) >= limit:
            break
if not rows:
    sys.exit("no row passes every layer")
bodies = [json.dumps({"features": x}) for x in rows]
lua = ["local bodies = {"] + ["[[" + body + "]]," for body in bodies] + [
    "}",
    "local i = 0",
    "local key = os.getenv('BENCH_KEY') or 'none'",
    "request = function()",
    "  i = i % #bodies + 1",
    "  return wrk.format('POST', nil, {['Content-Type']='application/json', ['X-User-Id']='bench-' .. (i % 8),"
    " ['Authorization']='Bearer ' .. key}, bodies[i])",
    "end",
]
open(out, "w").write("\n".join(lua) + "\n")
print(f"{len(bodies)} bodies -> {out}")
