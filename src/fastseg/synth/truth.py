"""The ground-truth file: one row per connection, CSV or JSON lines."""
from __future__ import annotations

from typing import Dict

import numpy as np

from .. import _consts
from ..segments import format_addresses
from .scenarios import CONN_STATES, KINDS, Params

_SEC = _consts.NS_PER_SEC
_CLOSERS = ("none", "orig", "resp")
_CLOSES = ("none", "fin", "rst")
_TFO = ("none", "cookie_request", "cookie_data")

TRUTH_COLUMNS = (
    "conn", "kind", "client", "client_port", "server", "server_port", "ip_version",
    "syn_ts", "syn_ts_ns", "conn_state", "closer", "close", "syn_count",
    "synack_count", "fin_count", "rst_count", "handshake_completed",
    "handshake_rtt", "orig_bytes", "resp_bytes", "tfo", "tfo_data", "orig_isn",
    "resp_isn", "mss", "wscale", "sack", "ts", "ecn", "resp_mss", "resp_wscale",
    "ecn_ok", "packets", "bad_checksums", "orig_pkts", "resp_pkts", "duration",
    "syn_synack", "synack_ack", "retransmits", "keepalives", "zeek_conns", "zeek_orig_pkts", "zeek_resp_pkts",
)


def truth_rows(p: Params, t: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Truth columns (text-ready) for one block."""
    v6 = p.v6
    ipv = np.where(v6, 6, 4)
    ws_c = p.ws_c
    return {
        "conn": p.gidx, "kind": np.array(KINDS)[p.kind],
        "client": format_addresses(p.caddr, ipv), "client_port": p.cport,
        "server": format_addresses(p.saddr, ipv), "server_port": p.sport,
        "ip_version": ipv, "syn_ts": t["syn_ts"], "syn_ts_ns": t["syn_ts"],
        "conn_state": np.array(CONN_STATES)[t["state"]],
        "closer": np.array(_CLOSERS)[t["closer"]], "close": np.array(_CLOSES)[t["close"]],
        "syn_count": t["syn_count"], "synack_count": t["synack_count"],
        "fin_count": t["fin_count"], "rst_count": t["rst_count"],
        "handshake_completed": t["completed"], "handshake_rtt": t["rtt"],
        "orig_bytes": t["orig_bytes"], "resp_bytes": t["resp_bytes"],
        "tfo": np.array(_TFO)[p.tfo], "tfo_data": t["tfo_data"],
        "orig_isn": p.isn_c, "resp_isn": np.where(t["synack_count"] > 0, p.isn_s, -1),
        "mss": np.where(p.lid_c > 0, p.mss_c, -1), "wscale": ws_c,
        "sack": p.sack_c, "ts": p.ts_c, "ecn": p.ecn_c,
        "resp_mss": np.where(t["synack_count"] > 0, p.mss_s, -1),
        "resp_wscale": np.where(t["synack_count"] > 0, p.ws_s, -1),
        "ecn_ok": p.ecn_c & p.ecn_s & (t["synack_count"] > 0),
        "packets": t["packets"], "bad_checksums": t["bad_checksums"],
        "orig_pkts": t["orig_pkts"], "resp_pkts": t["resp_pkts"], "duration": t["duration"],
        "syn_synack": t["syn_synack"], "synack_ack": t["synack_ack"],
        "retransmits": t["retransmits"], "keepalives": t["keepalives"],
        "zeek_conns": t["zeek_conns"], "zeek_orig_pkts": t["zeek_orig_pkts"],
        "zeek_resp_pkts": t["zeek_resp_pkts"],
    }


_SECONDS_COLUMNS = ("syn_ts", "handshake_rtt", "duration", "syn_synack", "synack_ack")


def _truth_text(rows: Dict[str, np.ndarray], kind: str) -> str:
    """One block of truth rows as CSV ('csv') or JSON lines ('json').

    Each row is one ``%``-format of Python ints and short strings (the strings
    are addresses and fixed names: nothing to escape), which is several times
    faster than converting every value to text separately."""
    json_ = kind == "json"
    fmt, cols = [], []
    for name in TRUTH_COLUMNS:
        col = rows[name]
        key = f'"{name}":' if json_ else ""
        if name in _SECONDS_COLUMNS:
            ns = col.astype(np.int64)
            if (ns >= 0).all():
                fmt.append(key + "%d.%09d")
                cols += [(ns // _SEC).tolist(), (ns % _SEC).tolist()]
            else:
                absent = "null" if json_ else ""
                fmt.append(key + "%s")
                cols.append([f"{v // _SEC}.{v % _SEC:09d}" if v >= 0 else absent
                             for v in ns.tolist()])
        elif col.dtype == bool:
            fmt.append(key + "%s")
            cols.append(np.where(col, "true" if json_ else "1",
                                 "false" if json_ else "0").tolist())
        elif col.dtype.kind in "OUS":
            fmt.append(key + ('"%s"' if json_ else "%s"))
            cols.append(col.tolist())
        else:
            fmt.append(key + "%d")
            cols.append(col.astype(np.int64).tolist())
    line = ",".join(fmt)
    if json_:
        line = "{" + line + "}"
    return "".join(map((line + "\n").__mod__, zip(*cols)))


def write_truth(f, rows: Dict[str, np.ndarray], kind: str):
    f.write(_truth_text(rows, kind))


def truth_kind(path: str) -> str:
    low = path.lower()
    return "json" if low.endswith((".jsonl", ".json", ".ndjson")) else "csv"
