#!/usr/bin/env python3
"""Prints the Markdown table of compare.json (the README's and docs/benchmarks.md's).

    python3 benches/compare/table.py docs/compare/compare.json

Medians over the runs; each peer's cell also gives the peer / dynoqueue ratio. The last
column names who leads the line among dynoqueue (default settings), Sidekiq and BullMQ.
"""

import json
import sys

COLUMNS = [("ours", "dynoqueue"), ("sidekiq", "Sidekiq"), ("bullmq", "BullMQ"),
           ("ours_untracked", "dynoqueue, status off")]


def num(v):
    if v == int(v) and v < 10_000:
        return f"{v:.0f}"
    if v >= 10_000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.1 or v == 0:
        return f"{v:.2f}"
    return f"{v:.3f}"


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    med = data["medians"]
    cols = [(k, label) for k, label in COLUMNS if k in med]
    print("| measure | " + " | ".join(label for _, label in cols) + " | leads |")
    print("|---|" + "---:|" * len(cols) + "---|")
    for m in data["measures"]:
        key, lower = m["key"], m["lower_is_better"]
        ours = med["ours"][key]
        cells = []
        for k, _ in cols:
            v = med[k][key]
            cell = num(v)
            if k != "ours" and ours > 0:
                cell += f" (×{num(v / ours)})"
            cells.append(cell)
        contenders = {label: med[k][key] for k, label in cols if k != "ours_untracked"}
        best = (min if lower else max)(contenders.values())
        leaders = [label for label, v in contenders.items() if v == best]
        unit = f" ({m['unit']})" if m["unit"] else ""
        print(f"| {m['label']}{unit} | " + " | ".join(cells) + f" | {', '.join(leaders)} |")


if __name__ == "__main__":
    main()
