#!/usr/bin/env python3
"""Draws docs/compare/compare.svg from compare.json (python3 standard library only).

    python3 benches/compare/chart.py docs/compare/compare.json docs/compare/compare.svg

One row per measure, one bar per peer: how many times better this project's median is
than the peer's (peer / ours where lower is better, ours / peer where higher is better),
on a log scale around 1. A bar to the right of 1: this project leads; to the left: the
peer does.
"""

import json
import math
import sys
from xml.sax.saxutils import escape

PEERS = [("sidekiq", "Sidekiq", "#c0392b"), ("bullmq", "BullMQ", "#2471a3")]
LABEL_W = 330
PLOT_W = 520
RIGHT_PAD = 70
BAR_H = 11
ROW_GAP = 9
TOP = 78
FONT = "font-family='Helvetica, Arial, sans-serif'"


def factor(ours, peer, lower_is_better):
    """How many times better ours is (>1: ours leads)."""
    if ours <= 0 or peer <= 0:
        return None
    return peer / ours if lower_is_better else ours / peer


def fmt(f):
    if f >= 10:
        return f"×{f:.0f}"
    return f"×{f:.2f}" if f >= 0.1 else f"×{f:.2g}"


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        data = json.load(f)
    med = data["medians"]
    rows = []
    for m in data["measures"]:
        ours = med["ours"][m["key"]]
        bars = [(label, colour, factor(ours, med[key][m["key"]], m["lower_is_better"]))
                for key, label, colour in PEERS if key in med]
        rows.append((m["label"] + (f" ({m['unit']})" if m["unit"] else ""), bars))
    factors = [f for _, bars in rows for _, _, f in bars if f]
    lo = math.floor(math.log10(min(factors + [0.5])))
    hi = math.ceil(math.log10(max(factors + [2])))
    x = lambda f: LABEL_W + (math.log10(f) - lo) / (hi - lo) * PLOT_W
    row_h = len(PEERS) * BAR_H + ROW_GAP
    height = TOP + len(rows) * row_h + 40
    width = LABEL_W + PLOT_W + RIGHT_PAD
    p = data["params"]
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT} font-size='12'>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='10' y='20' font-size='15' font-weight='bold'>dynoqueue against Sidekiq and BullMQ: "
        f"how many times better dynoqueue is</text>",
        f"<text x='10' y='38' fill='#444'>median of {p['runs']} runs, one private Redis, "
        f"{p['jobs']:,} jobs, concurrency {p['concurrency']}; right of ×1: dynoqueue leads, "
        f"left: the peer leads (log scale)</text>",
    ]
    for i in range(0, len(rows), 2):
        y0 = TOP + i * row_h
        out.append(f"<rect x='0' y='{y0 - ROW_GAP / 2:.1f}' width='{width}' height='{row_h}' fill='#f4f4f4'/>")
    # Grid: 1, 2, 5 times the powers of ten; ×1 in bold.
    for e in range(lo, hi + 1):
        for k in (1, 2, 5):
            f = k * 10 ** e
            if f > 10 ** hi:
                break
            gx = x(f)
            strong = f == 1
            out.append(f"<line x1='{gx:.1f}' y1='{TOP - 8}' x2='{gx:.1f}' y2='{height - 34}' "
                       f"stroke='{'#000' if strong else '#ddd'}' stroke-width='{1.5 if strong else 1}'/>")
            if k == 1 or hi - lo <= 2:
                out.append(f"<text x='{gx:.1f}' y='{height - 20}' text-anchor='middle' fill='#444'>"
                           f"{'×' + format(f, 'g')}</text>")
    # Legend.
    lx = LABEL_W
    for _, label, colour in PEERS:
        out.append(f"<rect x='{lx}' y='{TOP - 26}' width='12' height='12' fill='{colour}'/>")
        out.append(f"<text x='{lx + 16}' y='{TOP - 16}'>{escape(label)}</text>")
        lx += 90
    one = x(1)
    for i, (label, bars) in enumerate(rows):
        y0 = TOP + i * row_h
        out.append(f"<text x='{LABEL_W - 8}' y='{y0 + BAR_H + 3}' text-anchor='end'>{escape(label)}</text>")
        for j, (_, colour, f) in enumerate(bars):
            y = y0 + j * BAR_H
            if f is None:
                continue
            fx = min(max(f, 10 ** lo), 10 ** hi)
            x0, x1 = sorted((one, x(fx)))
            out.append(f"<rect x='{x0:.1f}' y='{y}' width='{max(x1 - x0, 1):.1f}' height='{BAR_H - 2}' "
                       f"fill='{colour}'/>")
            tx, anchor = (x1 + 4, "start") if f >= 1 else (x0 - 4, "end")
            out.append(f"<text x='{tx:.1f}' y='{y + BAR_H - 3}' text-anchor='{anchor}' font-size='10'>{fmt(f)}</text>")
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
