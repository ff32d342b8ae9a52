"""Human-readable output of an audit: the stdout table and the self-contained HTML report.

The HTML page needs nothing beyond the standard library: its two plots are inline SVG written
here, full width on a wide screen and scrollable on a narrow one. Top: per output, the exact
bound of the method (grey bar) and the claimed ends (▲ lo, ▼ hi, coloured by verdict); ulp-scale
differences are invisible at that scale, so the second plot gives the signed slack of every side
in ulps of the claim's dtype on a symmetric log axis (positive = the claim is on the safe side;
an unsound side's witness distance and an inside_exact side's gap are plotted negative). The
legend sits above the plots and uses the plots' own markers. The page also carries the
provenance (command line, exactbounds version, date, SHA-256 of every input file), every
witness as exact rationals ready to copy, and for ``inside_exact`` the closest value found.
"""

import html
import math

from .verdicts import (
    BEYOND,
    INSIDE_EXACT,
    SOUND,
    UNSOUND,
    VERDICTS,
    WITHIN,
    rounding_counts,
    summarize,
    value_float,
    value_json,
)

COLOURS = {UNSOUND: "#d62728", INSIDE_EXACT: "#ff7f0e", SOUND: "#2ca02c"}
MAX_PLOTTED = 400
"""Outputs drawn in the plots (the table lists every side)."""


def _f(v, dtype="float64"):
    """A value as a float with enough digits to tell neighbouring floats of ``dtype`` apart."""
    return f"{value_float(v):.{9 if dtype == 'float32' else 17}g}"


def _where(v):
    return f"{v.node}[{v.output}]" if v.node else str(v.output)


def _short(xs, n=6):
    s = ", ".join(f"{value_float(v):.9g}" for v in xs[:n])
    return f"[{s}{', ...' if len(xs) > n else ''}]"


def table(result, title=""):
    """The stdout table: counts per verdict first, then the bad rows (unsound, inside_exact)."""
    vs = result.verdicts
    c = summarize(vs)
    lines = []
    if title:
        lines.append(title)
    rc = rounding_counts(vs)

    def count(k):
        r = rc.get(k)
        if not r or not (r[WITHIN] or r[BEYOND]):
            return f"{k} {c[k]}"
        return f"{k} {c[k]} ({r[WITHIN]} within rounding, {r[BEYOND]} beyond)"

    head = f"{len(vs)} sides checked, {result.evaluations} exact evaluations: " + ", ".join(
        count(k) for k in VERDICTS
    )
    if result.info.get("relaxation"):
        head += f"; relaxation {result.info['relaxation']}"
    lines.append(head)
    tier = result.info.get("fast_tier")
    if tier:
        lines.append(
            f"fast tier ({tier['mode']}, {tier['status']}, {tier['seconds']} s): "
            f"{tier['decided']} of {tier['sides']} sides sound without exact work"
            + ("" if tier["decided"] == tier["sides"] else "; the others audited exactly")
        )
    bad = [v for v in vs if v.verdict != SOUND]
    if bad:
        lines.append(
            f"{'output':>10} {'side':>4}  {'verdict':<12} {'claimed':>24} "
            f"{'exact':>24} {'ulps':>10}  witness x (float) -> y"
        )
        for v in bad:
            w = v.witness
            wit = (
                f"{_short(w.x)} -> {_f(w.y, v.dtype)} ({w.source})"
                if w
                else (v.note or "none found")
            )
            lines.append(
                f"{_where(v):>10} {v.side:>4}  {v.verdict:<12} {_f(v.claimed, v.dtype):>24} "
                f"{_f(v.exact, v.dtype):>24} {value_float(v.ulps):>10.4g}  {wit}"
                + (
                    f"  [{v.rounding} rounding: {value_float(v.ulps_terms):.3g} ulps of the terms]"
                    if v.rounding
                    else ""
                )
            )
    for p in result.properties:
        line = f"property {p.status}"
        if p.proved_by:
            line += f" by the exact {p.proved_by} bounds"
        if p.x is not None:
            line += f": counterexample x = {_short(p.x)}, y = {_short(p.y)} (clause {p.clause})"
        lines.append(line)
    return "\n".join(lines)


def _signed_ulps(v):
    """Signed distance in ulps, positive on the safe side (finite: claims of 0 are measured at
    the exact value's magnitude, see ``audit.ulps.ulp_near``)."""
    u = value_float(v.ulps)
    u = u if math.isfinite(u) else 1.7976931348623157e308
    return u if v.verdict == SOUND else -u


def _keys(vs):
    keys = []
    seen = set()
    for v in vs:
        k = (v.node or "", v.output)
        if k not in seen:
            seen.add(k)
            keys.append(k)
    return keys


def _label(k):
    return f"{k[0]}[{k[1]}]" if k[0] else str(k[1])


def _marker(x, y, side, colour, tip=""):
    """▲ (lo) or ▼ (hi) centred at (x, y), with a tooltip."""
    d = 6
    pts = (
        f"{x - d},{y + d} {x + d},{y + d} {x},{y - d}"
        if side == "lo"
        else f"{x - d},{y - d} {x + d},{y - d} {x},{y + d}"
    )
    t = f"<title>{html.escape(tip)}</title>" if tip else ""
    return f'<polygon points="{pts}" fill="{colour}" stroke="#222" stroke-width="0.6">{t}</polygon>'


def _legend():
    """The legend as HTML (it wraps on a narrow screen), each entry with the plots' marker."""

    def icon(body):
        return f'<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">{body}</svg>'

    items = [
        (
            icon('<rect x="3" y="0" width="10" height="16" fill="#bbb"/>'),
            "exact bound of the method",
        )
    ]
    items += [(icon(_marker(8, 8, "lo", COLOURS[k])), f"claim {k}") for k in VERDICTS]
    items += [
        (icon(_marker(8, 8, "lo", "#888")) + icon(_marker(8, 8, "hi", "#888")), "lo side, hi side")
    ]
    return (
        '<p class="legend">'
        + "".join(f"<span>{i} {html.escape(t)}</span>" for i, t in items)
        + "</p>"
    )


def _nice(lo, hi):
    """About five round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / 4))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (m * step) <= 6:
            step *= m
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-12 * abs(hi) and len(out) < 12:
        out.append(t)
        t += step
    return out


def _symlog(s):
    return math.copysign(math.log10(1 + abs(s)), s)


def _svg(width, height, body, label):
    return (
        f'<svg viewBox="0 0 {width} {height}" style="min-width:{min(width, 640)}px" '
        f'role="img" aria-label="{html.escape(label)}" class="plot">{body}</svg>'
    )


def figures_svg(result):
    """The two plots as SVG strings ``(values, ulps)``."""
    vs = result.verdicts
    keys = _keys(vs)[:MAX_PLOTTED]
    pos = {k: i for i, k in enumerate(keys)}
    vs = [v for v in vs if (v.node or "", v.output) in pos]
    n = max(len(keys), 1)
    left, right, top, W = 90, 20, 12, max(900, 60 + 28 * n)
    step = (W - left - right) / n
    X = [left + (i + 0.5) * step for i in range(n)]
    rot = n > 12

    def xlabels(y0):
        out = []
        for k, i in pos.items():
            lab = html.escape(_label(k))
            if rot:
                out.append(
                    f'<text x="{X[i]}" y="{y0}" transform="rotate(-45 {X[i]} {y0})" '
                    f'text-anchor="end">{lab}</text>'
                )
            else:
                out.append(f'<text x="{X[i]}" y="{y0 + 4}" text-anchor="middle">{lab}</text>')
        return "".join(out)

    bottom = 70 if rot else 40

    def grid(y, label, strong=False):
        return (
            f'<line x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#222" if strong else "#e6e6e6"}"/><text x="{left - 6}" '
            f'y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )

    def axis_labels(H, ylabel):
        mid = (H - bottom) / 2
        return (
            f'<text x="14" y="{mid}" transform="rotate(-90 14 {mid})" '
            f'text-anchor="middle">{html.escape(ylabel)}</text>' + xlabels(H - bottom + 14)
        )

    def fin(x):
        return x if math.isfinite(x) else math.copysign(1.7976931348623157e308, x)

    # -- values ---------------------------------------------------------------------------------
    H = 320
    vals = [fin(value_float(v.claimed)) for v in vs] + [fin(value_float(v.exact)) for v in vs]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if hi - lo <= 1e-300 * max(1.0, abs(hi)):
        lo, hi = lo - 1, hi + 1
    pad = 0.06 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def Y(v):
        return top + (H - top - bottom) * (hi - v) / (hi - lo)

    body = [grid(Y(t), f"{t:.4g}") for t in _nice(lo, hi)]
    for k, i in pos.items():
        mine = [v for v in vs if (v.node or "", v.output) == k]
        los = [fin(value_float(v.exact)) for v in mine if v.side == "lo"]
        his = [fin(value_float(v.exact)) for v in mine if v.side == "hi"]
        if los or his:
            a, b = min(los or his), max(his or los)
            body.append(
                f'<rect x="{X[i] - min(8, step / 3):.1f}" y="{Y(b):.1f}" '
                f'width="{2 * min(8, step / 3):.1f}" height="{max(Y(a) - Y(b), 1):.1f}" '
                f'fill="#bbb"><title>exact [{a:.9g}, {b:.9g}]</title></rect>'
            )
    for v in vs:
        i = pos[(v.node or "", v.output)]
        c = fin(value_float(v.claimed))
        body.append(
            _marker(
                X[i],
                Y(c),
                v.side,
                COLOURS[v.verdict],
                f"{_label((v.node or '', v.output))} {v.side}: {v.verdict}, claimed "
                f"{_f(v.claimed, v.dtype)}, exact {_f(v.exact, v.dtype)}",
            )
        )
    body.append(axis_labels(H, "value"))
    values = _svg(W, H, "".join(body), "claimed and exact bounds per output")

    # -- slack in ulps, symmetric log axis ---------------------------------------------------------
    H = 300
    ss = [_symlog(_signed_ulps(v)) for v in vs]
    m = max([abs(s) for s in ss] + [1.0])
    m = math.ceil(m)

    def Ys(s):
        return top + (H - top - bottom) * (m - s) / (2 * m)

    every = max(1, (m + 3) // 4) if m > 6 else 1
    ticks = [(0.0, "0")] + [
        (sg * 10.0**j, f"{'−' if sg < 0 else ''}{f'1e{j}' if j > 3 else f'{10**j:g}'}")
        for j in range(0, m + 1, every)
        for sg in (1, -1)
    ]
    body = [grid(Ys(_symlog(t)), lab, t == 0) for t, lab in ticks]
    off = min(7, step / 4)
    for v, s in zip(vs, ss):
        i = pos[(v.node or "", v.output)]
        body.append(
            _marker(
                X[i] + (-off if v.side == "lo" else off),
                Ys(s),
                v.side,
                COLOURS[v.verdict],
                f"{_label((v.node or '', v.output))} {v.side}: {v.verdict}, "
                f"{_signed_ulps(v):.4g} ulps",
            )
        )
    body.append(axis_labels(H, f"slack (ulps of {result.dtype})"))
    ulps = _svg(W, H, "".join(body), "signed slack in ulps per side")
    return values, ulps


_CSS = """body{font-family:system-ui,sans-serif;margin:1.2em auto;max-width:1600px;padding:0 1em;
color:#222;line-height:1.4}h1{font-size:1.4em;word-break:break-word}h2{font-size:1.1em;
margin-top:1.5em}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;
padding:3px 6px;text-align:right;vertical-align:top}th{background:#eee}td.l{text-align:left}
.unsound{background:#fbdada}.inside_exact{background:#ffe9cc}.sound{background:#e3f4e3}
.counts span{margin-right:1.5em;font-weight:bold}code{font-size:12px;word-break:break-all}
code.copy{user-select:all;background:#f6f6f6;padding:1px 3px;display:inline-block;
max-width:60em}.scroll{overflow-x:auto;width:100%}svg.plot{width:100%;height:auto;
font-size:12px;display:block}.legend span{display:inline-flex;align-items:center;gap:4px;
margin-right:1.2em;font-size:13px;white-space:nowrap}figure{margin:0.5em 0 1.2em 0}
td.w{text-align:left;min-width:30em}
table.prov td{text-align:left}figcaption{color:#555;font-size:13px}"""


def _copy(text):
    return f'<code class="copy">{html.escape(text)}</code>'


def _exact_list(xs):
    return (
        "["
        + ", ".join(
            f'"{value_json(v)}"' if not isinstance(value_json(v), list) else str(value_json(v))
            for v in xs
        )
        + "]"
    )


def _witness_cell(v):
    w = v.witness
    e = html.escape
    if w is not None:
        return (
            f"x ≈ <code>{e(_short(w.x, 6))}</code>, y = {e(_f(w.y, v.dtype))} "
            f"({e(w.source)}, evaluation {w.evaluations})<details><summary>exact x and y "
            f"(select to copy)</summary>x = {_copy(_exact_list(w.x))}<br>y = "
            f"{_copy(str(value_json(w.y)))}</details>"
        )
    cell = e(v.note or "")
    if v.best is not None:
        x, y = v.best
        cell += (
            f"{'<br>' if cell else ''}closest value found: y ≈ {e(_f(y, v.dtype))} at x ≈ "
            f"<code>{e(_short(x, 6))}</code><details><summary>exact x (select to copy)"
            f"</summary>{_copy(_exact_list(x))}</details>"
        )
    return cell


def _provenance_html(prov):
    if not prov:
        return ""
    e = html.escape
    rows = [
        f"<tr><th>command</th><td>{_copy(prov.get('command', ''))}</td></tr>",
        f"<tr><th>exactbounds</th><td>{e(str(prov.get('version', '')))}</td></tr>",
        f"<tr><th>date</th><td>{e(str(prov.get('date', '')))}</td></tr>",
    ]
    for what, (path, digest) in prov.get("files", {}).items():
        rows.append(
            f"<tr><th>{e(what)}</th><td>{e(str(path))}<br>SHA-256 {_copy(digest)}</td></tr>"
        )
    return (
        f"<h2>Provenance</h2><div class='scroll'><table class='prov'>{''.join(rows)}</table></div>"
    )


def html_report(result, title="exactbounds check", provenance=None):
    """A self-contained HTML page: counts, provenance, the two SVG plots and every verdict.
    ``provenance``: ``{"command", "version", "date", "files": {what: (path, sha256)}}``."""
    c = summarize(result.verdicts)
    e = html.escape
    rows = []
    for v in result.verdicts:
        rows.append(
            f"<tr class='{v.verdict}'><td>{e(_where(v))}</td><td>{v.side}</td>"
            f"<td class='l'>{v.verdict}</td><td>{e(_f(v.claimed, v.dtype))}</td>"
            f"<td>{e(_f(v.exact, v.dtype))}</td><td>{value_float(v.ulps):.4g}</td>"
            f"<td class='w'>{_witness_cell(v)}</td></tr>"
        )
    props = "".join(
        f"<p>VNN-LIB property: <b>{e(p.status)}</b>"
        f"{' by the exact ' + e(p.proved_by) + ' bounds' if p.proved_by else ''}"
        f"{': counterexample x = ' + _copy(_exact_list(p.x)) if p.x else ''}"
        f"</p>"
        for p in result.properties
    )
    counts = "".join(f"<span style='color:{COLOURS[k]}'>{k}: {c[k]}</span>" for k in VERDICTS)
    values, ulps = figures_svg(result)
    more = len(_keys(result.verdicts)) - MAX_PLOTTED
    cut = (
        f" The plots show the first {MAX_PLOTTED} outputs; the table lists all." if more > 0 else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{_CSS}</style></head>
<body><h1>{e(title)}</h1>
<p>Method <b>{e(result.method)}</b>, claim dtype <b>{e(result.dtype)}</b>,
{result.evaluations} exact evaluations in the witness search.
Distances in ulps of the claim's dtype at the claim (|v − c| / ulp(c); for a claim of 0, at the
exact value's magnitude).</p>
<p class="counts">{counts}</p>{props}
<h2>Claimed and exact bounds</h2>
{_legend()}
<figure><div class="scroll">{values}</div><figcaption>Per output: the method's exact bound (grey)
and the claimed ends. Differences of a few ulps do not show at this scale: see the slack
below.{cut}</figcaption></figure>
<figure><div class="scroll">{ulps}</div><figcaption>Signed slack of every side in ulps
(symmetric log axis): above 0 the claim is on the safe side of the exact bound; below 0 it is
inside it (inside_exact) or a witness lies outside it (unsound).</figcaption></figure>
<h2>Every side</h2>
<div class="scroll"><table><tr><th>output</th><th>side</th><th>verdict</th><th>claimed</th>
<th>exact</th><th>ulps</th><th>witness / note</th></tr>
{"".join(rows)}
</table></div>{_provenance_html(provenance)}</body></html>
"""


__all__ = ["table", "figures_svg", "html_report"]
