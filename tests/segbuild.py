"""Build a Segments table from a few hand-written packets.

    build([
        (0.000, ">", "S", 1000, 0, 0, dict(mss=1460)),
        (0.010, "<", "SA", 5000, 1001, 0),
        (0.020, ">", "A", 1001, 5001, 0),
    ], client="10.0.0.1:40000", server="10.0.0.2:80")

Each packet is ``(t_seconds, direction, flags, seq, ack, payload_len[, options])``
with direction ">" (client to server) or "<" (server to client), flags as
letters (F S R P A U E C N) and options overriding any other column
(window, mss, wscale, sack_perm, tsval, tsecr, tfo_cookie_len,
checksum_status, checksum, hdr_len, ttl, ...; ``client``/``server`` to
move one packet to another 4-tuple).  Every other column gets a default,
and ``flow_key`` is computed with the pure-Python SipHash-2-4 of ``refs``
over the construction in src/fastseg/_siphash.h, so it equals the parser's.
"""
from __future__ import annotations

import ipaddress

import numpy as np

from fastseg.segments import SEGMENT_DTYPES, Segments, empty_columns
from refs import flags_of, flow_key, mapped


def _endpoint(text: str):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


def build(packets, client: str = "10.0.0.1:40000", server: str = "10.0.0.2:80") -> Segments:
    """A Segments table of the given packets, in the given order."""
    n = len(packets)
    cols = empty_columns(n)
    defaults = {"hdr_len": 20, "window": 65535, "checksum": 0, "urgent": 0, "ttl": 64,
                "ip_id": 0, "mss": -1, "wscale": -1, "sack_perm": False, "sack_blocks": 0,
                "tsval": -1, "tsecr": -1, "tfo_cookie_len": -1, "checksum_status": 0,
                "ip_checksum_status": 0, "fragment": False,
                "_l3_off": 0, "_l4_off": 0, "_l3_caplen": 0}
    for name, v in defaults.items():
        cols[name][:] = v
    for i, p in enumerate(packets):
        t, direction, letters, seq, ack, plen = p[:6]
        opts = dict(p[6]) if len(p) > 6 else {}
        c_host, c_port = _endpoint(opts.pop("client", client))
        s_host, s_port = _endpoint(opts.pop("server", server))
        if direction == ">":
            (sh, sp), (dh, dp) = (c_host, c_port), (s_host, s_port)
        elif direction == "<":
            (sh, sp), (dh, dp) = (s_host, s_port), (c_host, c_port)
        else:
            raise ValueError(f"direction must be '>' or '<', not {direction!r}")
        sa, da = mapped(sh), mapped(dh)
        cols["frame"][i] = i + 1
        cols["ts_ns"][i] = int(round(t * 1e9))
        cols["ip_version"][i] = 4 if ipaddress.ip_address(sh).version == 4 else 6
        cols["src"][i] = np.frombuffer(sa, dtype=np.uint8)
        cols["dst"][i] = np.frombuffer(da, dtype=np.uint8)
        cols["sport"][i] = sp
        cols["dport"][i] = dp
        cols["seq"][i] = seq & 0xFFFFFFFF
        cols["ack"][i] = ack & 0xFFFFFFFF
        cols["flags"][i] = flags_of(letters)
        cols["payload_len"][i] = plen
        cols["flow_key"][i] = flow_key(sa, sp, da, dp)
        for name, v in opts.items():
            if name not in cols:
                raise KeyError(f"unknown column {name!r}")
            cols[name][i] = v
    assert set(SEGMENT_DTYPES) <= set(cols)
    return Segments(cols)
