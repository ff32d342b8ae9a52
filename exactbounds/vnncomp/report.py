"""The suite's CSV and self-contained HTML page (counts per verdict, one row per instance, the
exact counterexamples)."""

import csv
import html
import io
import json

COLUMNS = (
    "index",
    "onnx",
    "vnnlib",
    "claimed",
    "verdict",
    "status",
    "seconds",
    "cpu_seconds",
    "message",
)


def _message(r):
    d = r.get("detail") or {}
    if "message" in d:
        return d["message"]
    if "replay" in d:
        rp = d["replay"]
        return (
            f"inside {rp['x_inside']}, float32 inside {rp['x_float32_inside']}, "
            f"margin {rp['margin_exact']}, float32 says {rp['violated_float32_evaluation']}"
        )
    if "verify" in d:
        v = d["verify"]
        return f"{v['status']}: {v.get('regions')} regions, {v.get('open')} open"
    return ""


def csv_text(rows, timed):
    """One line per instance: ``COLUMNS``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r, t in zip(rows, timed):
        w.writerow(
            [
                r["index"],
                r["onnx"],
                r["vnnlib"],
                r["claimed"] or "",
                r["verdict"],
                r["status"] or "",
                t.get("seconds", ""),
                t.get("cpu_seconds", ""),
                _message(t),
            ]
        )
    return buf.getvalue()


_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
    ".confirmed,.proved{background:#dfd}.refuted,.error{background:#fdd}"
    ".float_artifact,.unconfirmed,.timeout,.violated{background:#ffd}"
    "pre{white-space:pre-wrap;word-break:break-all;font-size:80%}"
)


def html_page(doc, timed):
    """A self-contained HTML page of ``results.json`` (``timed``: the rows with seconds)."""
    e = html.escape
    out = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>exactbounds suite "
        f"{e(doc['benchmark'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>exactbounds suite: {e(doc['benchmark'])}</h1>",
        f"<p>results checked: {e(str(doc['results'] or 'none (the property status)'))}</p>",
        "<h2>Counts</h2><table><tr><th>verdict</th><th>instances</th></tr>",
    ]
    for k, v in doc["counts"].items():
        out.append(f"<tr class='{e(k)}'><td>{e(k)}</td><td>{v}</td></tr>")
    out.append(
        "</table><h2>Instances</h2><table><tr>"
        + "".join(f"<th>{c}</th>" for c in COLUMNS)
        + "</tr>"
    )
    for r, t in zip(doc["instances"], timed):
        cells = [
            r["index"],
            r["onnx"],
            r["vnnlib"],
            r["claimed"] or "",
            r["verdict"],
            r["status"] or "",
            t.get("seconds", ""),
            _message(t),
        ]
        out.append(
            f"<tr class='{e(r['verdict'])}'>"
            + "".join(f"<td>{e(str(c))}</td>" for c in cells)
            + "</tr>"
        )
    out.append("</table><h2>Exact counterexamples</h2>")
    for r in doc["instances"]:
        d = r.get("detail") or {}
        cex = d.get("counterexample") or (
            d.get("replay") and {"x": d["replay"]["x"], "y": d["replay"]["y_exact"]}
        )
        if cex:
            body = cex if isinstance(cex, str) else json.dumps(cex, indent=1)
            out.append(
                f"<h3>#{r['index']} {e(r['onnx'])} {e(r['vnnlib'])} "
                f"({e(r['verdict'])})</h3><pre>{e(body)}</pre>"
            )
    out.append("</body></html>\n")
    return "\n".join(out)
