"""The soak's plot, as a hand-written SVG: three panels over time (RSS; open descriptors;
connections and streams), the phases shaded and each reload marked."""

from html import escape

W, LEFT, RIGHT = 960, 70, 150
PANEL_H, GAP, TOP = 170, 46, 40
PHASE_FILL = {"prime": "#f2f2f2", "idle-before": "#e8f0ff", "warm-up": "#fff4d6",
              "load": "#ffffff", "idle-after": "#e8f0ff", "drain": "#ffe4e4"}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def nice_max(v):
    if v <= 0:
        return 1
    for mag in range(-2, 9):
        for step in (1, 2, 2.5, 5):
            top = step * 10 ** mag
            if top >= v:
                return top
    return v


def ticks(top, n=4):
    return [top * i / n for i in range(n + 1)]


def fmt(v):
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


def svg(report):
    samples = report["samples"]
    v = report["verdicts"]
    t0 = samples[0]["t"] if samples else 0
    t1 = samples[-1]["t"] if samples else 1
    span = max(t1 - t0, 1)
    pw = W - LEFT - RIGHT
    x = lambda t: LEFT + (t - t0) / span * pw  # noqa: E731
    panels = [
        ("RSS (MiB)", [("VmRSS", [(s["t"], s["rss_kib"] / 1024) for s in samples])]),
        ("open descriptors", [("fds", [(s["t"], s["fds"]) for s in samples])]),
        ("connections, streams", [
            ("client conns", [(s["t"], s["client_conns"]) for s in samples]),
            ("upstream conns", [(s["t"], s["upstream_conns"]) for s in samples]),
            ("streams relayed", [(s["t"], s["active_streams"]) for s in samples
                                 if s["active_streams"] is not None]),
            ("requests in flight", [(s["t"], s["in_flight"]) for s in samples]),
        ]),
    ]
    h = TOP + len(panels) * (PANEL_H + GAP) + 24
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" '
           f'viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{h}" fill="white"/>']
    mem = v["memory"]
    growth = "n/a" if mem["growth"] is None else f"{mem['growth'] * 100:+.2f}%"
    title = (f"ringgate soak: {report['minutes']:g} min at {report['rate']:g} req/s, "
             f"{report['requests']} requests; RSS growth {growth}; fds "
             f"{v['descriptors']['baseline']['fds']} -> {v['descriptors']['end']['fds']}; "
             f"{'PASS' if v['pass'] else 'FAIL'}")
    out.append(f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>')
    # phase spans
    spans = []
    for s in samples:
        if spans and spans[-1][0] == s["phase"]:
            spans[-1][2] = s["t"]
        else:
            spans.append([s["phase"], s["t"], s["t"]])
    for i in range(len(spans) - 1):
        spans[i][2] = spans[i + 1][1]
    for p, (name, series) in enumerate(panels):
        y0 = TOP + p * (PANEL_H + GAP)
        vals = [val for _, pts in series for _, val in pts]
        top = nice_max(max(vals) if vals else 1)
        y = lambda val, y0=y0, top=top: y0 + PANEL_H - val / top * PANEL_H  # noqa: E731
        for ph, a, b in spans:
            out.append(f'<rect x="{x(a):.1f}" y="{y0}" width="{max(x(b) - x(a), 0.5):.1f}" '
                       f'height="{PANEL_H}" fill="{PHASE_FILL.get(ph, "#fff")}"/>')
            if p == 0 and x(b) - x(a) > 7 * len(ph):
                out.append(f'<text x="{(x(a) + x(b)) / 2:.1f}" y="{y0 - 4}" text-anchor="middle" '
                           f'fill="#666">{escape(ph)}</text>')
        for tv in ticks(top):
            yy = y(tv)
            out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{fmt(tv)}</text>')
        if p == 0 and mem["warm_up_rss_kib"] and mem["end_rss_kib"]:
            for label, kib, dash in (("warm-up", mem["warm_up_rss_kib"], "2,2"),
                                     ("end", mem["end_rss_kib"], "6,3")):
                yy = y(kib / 1024)
                out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                           f'stroke="#1f77b4" stroke-opacity="0.6" stroke-dasharray="{dash}"/>')
                out.append(f'<text x="{LEFT + pw + 10}" y="{yy + (12 if label == "warm-up" else -3):.1f}" '
                           f'fill="#1f77b4">{label} median {kib / 1024:.2f}</text>')
        for r in report.get("reloads", []):
            xx = x(r["t"])
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y0}" y2="{y0 + PANEL_H}" '
                       f'stroke="#888" stroke-dasharray="3,3"/>')
        out.append(f'<rect x="{LEFT}" y="{y0}" width="{pw}" height="{PANEL_H}" fill="none" '
                   f'stroke="#333"/>')
        out.append(f'<text x="14" y="{y0 + PANEL_H / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 14 {y0 + PANEL_H / 2})">{escape(name)}</text>')
        for i, (label, pts) in enumerate(series):
            color = COLORS[i % len(COLORS)]
            if pts:
                path = " ".join(f"{x(t):.1f},{y(val):.1f}" for t, val in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                           f'stroke-width="1.3"/>')
            ly = y0 + 14 + i * 16
            out.append(f'<line x1="{LEFT + pw + 10}" x2="{LEFT + pw + 28}" y1="{ly - 4}" '
                       f'y2="{ly - 4}" stroke="{color}" stroke-width="2"/>')
            out.append(f'<text x="{LEFT + pw + 32}" y="{ly}">{escape(label)}</text>')
        # time axis
        step = nice_max(span / 8)
        t = 0.0
        while t <= span + 1e-9:
            xx = x(t0 + t)
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y0 + PANEL_H}" '
                       f'y2="{y0 + PANEL_H + 4}" stroke="#333"/>')
            out.append(f'<text x="{xx:.1f}" y="{y0 + PANEL_H + 16}" text-anchor="middle">'
                       f'{fmt(t)}</text>')
            t += step
    out.append(f'<text x="{LEFT + pw / 2}" y="{h - 26}" text-anchor="middle">seconds since the '
               f'gateway started (grey dashed lines: config reloads)</text>')
    xx = LEFT
    for ph, fill in PHASE_FILL.items():
        out.append(f'<rect x="{xx}" y="{h - 16}" width="12" height="10" fill="{fill}" '
                   f'stroke="#999"/>')
        out.append(f'<text x="{xx + 16}" y="{h - 7}">{escape(ph)}</text>')
        xx += 26 + 7 * len(ph)
    out.append("</svg>")
    return "\n".join(out) + "\n"
