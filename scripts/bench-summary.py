#!/usr/bin/env python3
"""Prints criterion's mean estimates (ns) from target/criterion, grouped, with ratios to a
baseline in the same group: `python3 scripts/bench-summary.py GROUP BASELINE`."""
import json, os, sys, glob

# Cargo's default target directory (beside Cargo.toml) unless CARGO_TARGET_DIR says otherwise.
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target"))
root = os.path.join(target, "criterion")
group, baseline = sys.argv[1], sys.argv[2]
rows = {}
for est in glob.glob(os.path.join(root, group, "**", "new", "estimates.json"), recursive=True):
    name = os.path.relpath(os.path.dirname(os.path.dirname(est)), os.path.join(root, group))
    with open(est) as f:
        rows[name] = json.load(f)["mean"]["point_estimate"]
base = rows.get(baseline)
for name in sorted(rows):
    ratio = f"{rows[name] / base:.2f}x {baseline}" if base else ""
    print(f"{group}/{name:32} {rows[name]:9.1f} ns  {ratio}")
