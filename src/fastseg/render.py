"""Text rendering of a Report for people (plain aligned tables, no colours)."""
from __future__ import annotations

import time
from typing import List, Optional, Sequence

from .teardowns import MSL2, PORT_PRESSURE_MIN


def _ms(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v * 1e3:.3f} ms" if v < 1 else f"{v:.3f} s"


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _table(title: str, header: Sequence[str], rows: List[Sequence], out: List[str]) -> None:
    out.append(title)
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "  " + "  ".join(
        (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths)))
    out.append(fmt(cells[0]))
    out.append("  " + "  ".join("-" * w for w in widths))
    out.extend(fmt(r) for r in cells[1:])
    out.append("")


def _kv(title: str, pairs: List[Sequence], out: List[str]) -> None:
    out.append(title)
    width = max((len(str(k)) for k, _ in pairs), default=0)
    out.extend(f"  {str(k).ljust(width)}  {v}" for k, v in pairs)
    out.append("")


def not_decoded_lines(capture: dict) -> List[str]:
    """One sentence per link type whose packets were not decoded, from a
    report's ``capture`` section (or ``CaptureStats.to_dict()``)."""
    return [f"{k['packets']:,} packets of link type {k['link_type']} ({k['name']}) not decoded"
            for k in capture.get("link_types_not_decoded") or ()]


def render_report(d: dict) -> str:
    out: List[str] = []
    cap = d["capture"]
    files = ", ".join(d.get("files") or []) or "(segments)"
    out.append(f"fastseg summary: {files}")
    out.append("")
    pairs = [("packets", cap["packets"]), ("tcp segments", cap["tcp"]),
             ("non-tcp", cap["non_tcp"]), ("malformed", cap["malformed"])]
    for k, v in cap.get("malformed_by_reason", {}).items():
        pairs.append((f"  malformed: {k}", v))
    for k, v in cap.get("tcp_options", {}).items():
        if v:
            pairs.append((f"  tcp, options {k}", v))
    for k, v in cap.get("non_tcp_by_reason", {}).items():
        pairs.append((f"  non-tcp: {k}", v))
    if cap.get("start") is not None:
        pairs.append(("time span", f"{cap['duration']:.3f} s"))
    pairs.extend(("note", line) for line in not_decoded_lines(cap))
    _kv("Capture", pairs, out)

    cs = d["checksums"]
    pairs = [("ok", cs["ok"]), ("bad", cs["bad"]), ("unverified", cs["unverified"]),
             ("IPv4 header bad", cs["ip_bad"])]
    for o in cs["offload"]:
        pairs.append(("note", f"checksum offload on {o['host']} ({o['segments']} segments): "
                              "unfilled checksums of the capturing host, not corruption"))
    if cs.get("untrusted"):
        pairs.append(("note", "checksums wrong almost everywhere, not offload (a rewritten "
                              "trace?): ignored"))
    _kv("TCP checksums", pairs, out)

    c = d["connections"]
    _table(f"Connections: {c['total']}", ["conn_state", "count"],
           [(k, v) for k, v in c["by_state"].items()], out)

    h = d["handshakes"]
    pairs = [("completed", h["completed"]), ("refused (RST to SYN)", h["refused"]),
             ("unanswered SYNs", h["unanswered"]), ("SYN retransmits", h["syn_retransmits"])]
    if h.get("syn_backoff"):
        pairs.append(("SYN retransmit gaps", ", ".join(f"{k}: {v}" for k, v in h["syn_backoff"].items())))
    _kv("Handshakes", pairs, out)
    rows = []
    for name, key in (("SYN -> ACK (iRTT)", "rtt"), ("SYN -> SYN-ACK", "syn_synack"),
                      ("SYN-ACK -> ACK", "synack_ack")):
        r = h[key]
        rows.append((name, r["count"], _ms(r["p50"]), _ms(r["p90"]), _ms(r["p99"]), _ms(r["max"])))
    _table("Handshake times", ["", "n", "p50", "p90", "p99", "max"], rows, out)

    t = d["teardowns"]
    tw = t["time_wait"]
    pairs = [("FIN closes", t["fin"]), ("RST closes", t["rst"]),
             ("closed first by originator", t["by_orig"]),
             ("closed first by responder", t["by_resp"]),
             ("TIME-WAIT held by client", tw["held_by_orig"]),
             ("TIME-WAIT held by server", tw["held_by_resp"]),
             ("CLOSE-WAIT leaks", t["close_wait_leaks"]),
             ("in CLOSE-WAIT at end", t["close_wait_open_at_end"]),
             ("half-open", t["half_open"]), ("4-tuples reused", t["port_reuse"])]
    _kv("Teardowns", pairs, out)
    if tw["peak_per_server"]:
        _table("Peak concurrent TIME-WAIT per server", ["server", "port", "peak"],
               [(p["server"], p["port"], p["peak"]) for p in tw["peak_per_server"][:5]], out)
    if tw["peak_per_client"]:
        _table("Peak concurrent TIME-WAIT per client", ["client", "peak"],
               [(p["client"], p["peak"]) for p in tw["peak_per_client"][:5]], out)
    pressure = t["port_pressure"]
    if pressure and pressure[0]["fraction_of_range"] >= PORT_PRESSURE_MIN:
        rows = [p for p in pressure if p["fraction_of_range"] >= PORT_PRESSURE_MIN]
        _table(f"Ephemeral ports used per client -> server in one {MSL2:g} s window "
               f"(rows using {100 * PORT_PRESSURE_MIN:g}% of the range or more)",
               ["client", "server", "port", "window start (UTC)", "ports", "of range"],
               [(p["client"], p["server"], p["port"], _utc(p["window_start"]), p["ports"],
                 f"{100 * p['fraction_of_range']:.2f}%") for p in rows], out)
    elif pressure:
        p = pressure[0]
        out.append(f"Ephemeral ports: at most {p['ports']} per client -> server in one "
                   f"{MSL2:g} s window ({p['client']} -> {p['server']}:{p['port']}, "
                   f"{100 * p['fraction_of_range']:.2f}% of the range)")
        out.append("")

    fl = d["syn_flood"]
    if fl:
        _table("SYN-flood suspects", ["server", "port", "start", "secs", "SYNs", "completed", "sources"],
               [(f["server"], f["port"], f"{f['start']:.3f}", f"{f['end'] - f['start']:.1f}",
                 f["syns"], f["completed"], f["sources"]) for f in fl], out)
    else:
        out.append("SYN-flood suspects: none")
        out.append("")

    tfo = d["tfo"]
    o = d["options"]
    pairs = [("TFO: SYNs with data", tfo["syn_with_data"]),
             ("TFO: cookie requests", tfo["cookie_requests"]),
             ("MSS offered", ", ".join(f"{k} x{v}" for k, v in o["mss"].items()) or "-"),
             ("wscale offered", ", ".join(f"{k} x{v}" for k, v in o["wscale"].items()) or "-"),
             ("SACK negotiated", o["sack"]), ("timestamps negotiated", o["timestamps"]),
             ("ECN negotiated", o["ecn"])]
    _kv("Options", pairs, out)
    if "loss" in d:
        _render_loss(d["loss"], out)
    return "\n".join(out)


def _pct(rate: float) -> str:
    return f"{100 * rate:.3g}%"


def _ms(x) -> str:
    return "-" if x is None else f"{x * 1e3:.2f}"


def _render_loss(lo: dict, out: List[str]) -> None:
    zw = lo["zero_window"]
    pairs = [("connections with retransmissions", lo["connections_with_retransmissions"]),
             ("retransmitted segments", f"{lo['retrans_pkts']} of {lo['packets']} packets "
                                        f"({_pct(lo['retrans_rate'])}), {lo['retrans_bytes']} bytes"
                                        if lo["retrans_pkts"] else "none"),
             ("  fast / spurious", f"{lo['fast_retrans']} / {lo['spurious_retrans']}"),
             ("out of order", lo["out_of_order"]), ("duplicate ACKs", lo["dup_acks"]),
             ("lost before the capture point", lo["lost_segments"]),
             ("zero-window stalls", f"{zw['connections']} connections (originator "
                                    f"{zw['by_orig']}, responder {zw['by_resp']}), {zw['segments']} "
                                    f"segments, {zw['time']:.3f} s (longest {zw['max_time']:.3f} s)"),
             ("keep-alive-only connections", lo["keepalive_only"])]
    _kv("Loss and stalls (Wireshark's tcp.analysis)", pairs, out)
    if lo["per_server"]:
        _table("Retransmissions per server (worst first)",
               ["server", "port", "conns", "packets", "retrans", "rate"],
               [(r["server"], r["port"], r["connections"], r["packets"], r["retrans_pkts"],
                 _pct(r["retrans_rate"])) for r in lo["per_server"]], out)
    r = lo["rtt"]
    rows = [("all", "", r["samples"], _ms(r["p50"]), _ms(r["p90"]), _ms(r["max"]))]
    rows += [(s["server"], s["port"], s["samples"], _ms(s["p50"]), _ms(s["p90"]), _ms(s["max"]))
             for s in r["per_server"]]
    _table("Path RTT from data ACKs (ms)", ["server", "port", "conns", "p50", "p90", "max"],
           rows, out)
    ff = lo["first_flight"]
    _table("First flight (data before any ACK of data)", ["side", "conns", "p50 bytes",
                                                          "max bytes", "p50 segs", "max segs"],
           [(side, ff[side]["bytes"]["samples"], ff[side]["bytes"]["p50"] or "-",
             ff[side]["bytes"]["max"] or "-", ff[side]["segments"]["p50"] or "-",
             ff[side]["segments"]["max"] or "-") for side in ("orig", "resp")], out)
