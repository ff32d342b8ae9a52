"""Human-readable output of an audit: the stdout table and the self-contained HTML report.

The HTML page embeds one matplotlib figure as a base64 PNG (no external files): on top, per
output, the exact bound of the method (grey bar) and the claimed ends (markers coloured by
verdict); below, the signed slack of every side in ulps of the claim's dtype on a symlog axis
(positive = the claim is on the safe side of the exact bound; a witness's distance is plotted
negative). matplotlib is the ``[report]`` extra.
"""
import base64
import html
import io

from .verdicts import (BEYOND, INSIDE_EXACT, SOUND, UNSOUND, VERDICTS, WITHIN, rounding_counts,
                       summarize, value_float)

COLOURS = {UNSOUND: "#d62728", INSIDE_EXACT: "#ff7f0e", SOUND: "#2ca02c"}


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
    head = (f"{len(vs)} sides checked, {result.evaluations} exact evaluations: "
            + ", ".join(count(k) for k in VERDICTS))
    if result.info.get("relaxation"):
        head += f"; relaxation {result.info['relaxation']}"
    lines.append(head)
    bad = [v for v in vs if v.verdict != SOUND]
    if bad:
        lines.append(f"{'output':>10} {'side':>4}  {'verdict':<12} {'claimed':>24} "
                     f"{'exact':>24} {'ulps':>10}  witness x (float) -> y")
        for v in bad:
            w = v.witness
            wit = f"{_short(w.x)} -> {_f(w.y, v.dtype)} ({w.source})" if w else (v.note or "none found")
            lines.append(f"{_where(v):>10} {v.side:>4}  {v.verdict:<12} {_f(v.claimed, v.dtype):>24} "
                         f"{_f(v.exact, v.dtype):>24} {value_float(v.ulps):>10.4g}  {wit}"
                         + (f"  [{v.rounding} rounding: {value_float(v.ulps_terms):.3g} ulps of "
                            f"the terms]" if v.rounding else ""))
    for p in result.properties:
        line = f"property {p.status}"
        if p.proved_by:
            line += f" by the exact {p.proved_by} bounds"
        if p.x is not None:
            line += f": counterexample x = {_short(p.x)}, y = {_short(p.y)} (clause {p.clause})"
        lines.append(line)
    return "\n".join(lines)


def _signed_ulps(v):
    """Signed distance in ulps, positive on the safe side, clipped to ±1e15 for plotting (a
    claim of exactly 0 has the subnormal ulp, so any distance from it is astronomically many
    ulps; the table gives the number)."""
    s = min(value_float(v.ulps), 1e15)
    return s if v.verdict == SOUND else -s


def figure_png(result):
    """The report's figure as PNG bytes (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    vs = result.verdicts
    keys = []
    for v in vs:
        k = (v.node or "", v.output)
        if k not in keys:
            keys.append(k)
    pos = {k: i for i, k in enumerate(keys)}
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 0.5 * len(keys) + 3), 6.5),
                                   sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    drawn = set()
    for v in vs:
        i = pos[(v.node or "", v.output)]
        if (i, "bar") not in drawn:
            other = [u for u in vs if pos[(u.node or "", u.output)] == i]
            los = [value_float(u.exact) for u in other if u.side == "lo"]
            his = [value_float(u.exact) for u in other if u.side == "hi"]
            if los and his:
                ax1.plot([i, i], [min(los), max(his)], color="0.75", lw=8, solid_capstyle="butt",
                         zorder=1, label="exact bound of the method" if not drawn else None)
            drawn.add((i, "bar"))
        marker = "^" if v.side == "lo" else "v"
        ax1.scatter([i], [value_float(v.claimed)], marker=marker, color=COLOURS[v.verdict],
                    zorder=3, s=50)
        ax2.scatter([i + (-0.12 if v.side == "lo" else 0.12)], [_signed_ulps(v)], marker=marker,
                    color=COLOURS[v.verdict], s=50, zorder=3)
    for name, col in COLOURS.items():
        ax1.scatter([], [], color=col, label=f"claim: {name}")
    ax1.legend(fontsize=8, loc="best")
    ax1.set_ylabel("value")
    ax1.set_title(f"claimed vs exact {result.method} bounds ({result.dtype} claim); "
                  "▲ lo, ▼ hi", fontsize=10)
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_yscale("symlog", linthresh=1)
    top = max([abs(_signed_ulps(v)) for v in vs] + [1.0])
    ax2.set_ylim(-2.5 * top, 2.5 * top)
    ax2.set_xlim(-0.5, len(keys) - 0.5)
    ax1.set_xlim(-0.5, len(keys) - 0.5)
    ax2.grid(axis="y", color="0.9")
    ax2.set_ylabel(f"slack (ulps of {result.dtype})")
    ax2.set_xticks(range(len(keys)))
    ax2.set_xticklabels([f"{n}[{o}]" if n else str(o) for n, o in keys], rotation=45,
                        fontsize=8, ha="right")
    ax2.set_xlabel("output")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;
font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#eee}td.l{text-align:left}.unsound{background:#fbdada}
.inside_exact{background:#ffe9cc}.sound{background:#e3f4e3}.counts span{margin-right:1.5em;
font-weight:bold}code{font-size:12px;word-break:break-all}"""


def html_report(result, title="exactbounds check"):
    """A self-contained HTML page: counts, the figure (embedded PNG), and every verdict."""
    c = summarize(result.verdicts)
    png = base64.b64encode(figure_png(result)).decode("ascii")
    e = html.escape
    rows = []
    for v in result.verdicts:
        w = v.witness
        wit = (f"x = <code>{e(_short(w.x, 8))}</code><br>y = {e(_f(w.y, v.dtype))} "
               f"({e(w.source)}, evaluation {w.evaluations})") if w else e(v.note)
        rows.append(f"<tr class='{v.verdict}'><td>{e(_where(v))}</td><td>{v.side}</td>"
                    f"<td class='l'>{v.verdict}</td><td>{e(_f(v.claimed, v.dtype))}</td>"
                    f"<td>{e(_f(v.exact, v.dtype))}</td><td>{value_float(v.ulps):.4g}</td>"
                    f"<td class='l'>{wit}</td></tr>")
    props = "".join(f"<p>VNN-LIB property: <b>{e(p.status)}</b>"
                    f"{' by the exact ' + e(p.proved_by) + ' bounds' if p.proved_by else ''}"
                    f"{': counterexample x = <code>' + e(_short(p.x, 8)) + '</code>' if p.x else ''}"
                    f"</p>" for p in result.properties)
    counts = "".join(f"<span style='color:{COLOURS[k]}'>{k}: {c[k]}</span>" for k in VERDICTS)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{e(title)}</title><style>{_CSS}</style></head>
<body><h1>{e(title)}</h1>
<p>Method <b>{e(result.method)}</b>, claim dtype <b>{e(result.dtype)}</b>,
{result.evaluations} exact evaluations in the witness search.
Distances in ulps of the claim's dtype at the claim (|v − c| / ulp(c)).</p>
<p class="counts">{counts}</p>{props}
<img alt="claimed vs exact bounds" src="data:image/png;base64,{png}">
<table><tr><th>output</th><th>side</th><th>verdict</th><th>claimed</th><th>exact</th>
<th>ulps</th><th>witness / note</th></tr>
{''.join(rows)}
</table></body></html>
"""


__all__ = ["table", "figure_png", "html_report"]
