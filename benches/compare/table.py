#!/usr/bin/env python3
"""Prints the Markdown table of compare.json (the README's and docs/benchmarks.md's).

    python3 benches/compare/table.py docs/compare/compare.json [--ranges | --commands]

Medians over the runs; each peer's cell also gives the peer / dynoqueue ratio. The last
column names who leads the line among dynoqueue (default settings), Sidekiq and BullMQ.
`--ranges` adds each run's lowest and highest figure to every cell; `--commands` prints
instead the median `INFO commandstats` calls per job of each phase, by command.
"""

import json
import statistics
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
    ranges = "--ranges" in sys.argv[2:]
    med = data["medians"]
    cols = [(k, label) for k, label in COLUMNS if k in med]
    if "--commands" in sys.argv[2:]:
        return commands(data, cols)
    print("| measure | " + " | ".join(label for _, label in cols) + " | leads |")
    print("|---|" + "---:|" * len(cols) + "---|")
    for m in data["measures"]:
        key, lower = m["key"], m["lower_is_better"]
        ours = med["ours"][key]
        cells = []
        for k, _ in cols:
            v = med[k][key]
            cell = num(v)
            if ranges:
                runs = [r["systems"][k][key] for r in data["runs"]]
                cell += f" ({num(min(runs))}–{num(max(runs))})"
            elif k != "ours" and ours > 0:
                cell += f" (×{num(v / ours)})"
            cells.append(cell)
        contenders = {label: med[k][key] for k, label in cols if k != "ours_untracked"}
        best = (min if lower else max)(contenders.values())
        leaders = [label for label, v in contenders.items() if v == best]
        unit = f" ({m['unit']})" if m["unit"] else ""
        print(f"| {m['label']}{unit} | " + " | ".join(cells) + f" | {', '.join(leaders)} |")


def commands(data, cols):
    """Median calls per job of each command, per phase (commands run by scripts included)."""
    for phase in ("single", "bulk", "drain"):
        print(f"\n{phase}:\n")
        print("| command | " + " | ".join(label for _, label in cols) + " |")
        print("|---|" + "---:|" * len(cols))
        names = sorted({n for r in data["runs"] for k, _ in cols for n in r["systems"][k][f"{phase}_commandstats"]})
        rows = []
        for n in names:
            cells = []
            for k, _ in cols:
                v = statistics.median(r["systems"][k][f"{phase}_commandstats"].get(n, 0) for r in data["runs"])
                cells.append(v)
            rows.append((n, cells))
        rows.sort(key=lambda row: -max(row[1]))
        for n, cells in rows:
            if max(cells) >= 0.0005:
                print(f"| `{n}` | " + " | ".join(num(round(v, 3)) if round(v, 3) else "" for v in cells) + " |")


if __name__ == "__main__":
    main()
