"""Properties of the analysis report that hold for any input: generated mixes
of connections (every outcome, retransmitted SYNs, floods, nothing at all, one
packet) and every capture committed under tests/."""
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastseg
from fastseg.analyze import REPORT_KEYS
from segbuild import build

DATA = Path(__file__).parent / "data"
CAPTURES = sorted(p for p in DATA.rglob("*")
                  if p.is_file() and any(s in p.name for s in (".pcap", ".pcapng")))

# the packets of one connection, as (time offset, direction, flags, seq, ack, payload)
# with the client's ISN 1000 and the server's 5000
_SHAPES = {
    "SF": [(">", "S", 1000, 0, 0), ("<", "SA", 5000, 1001, 0), (">", "A", 1001, 5001, 0),
           (">", "PA", 1001, 5001, 10), ("<", "A", 5001, 1011, 0), (">", "FA", 1011, 5001, 0),
           ("<", "FA", 5001, 1012, 0), (">", "A", 1012, 5002, 0)],
    "REJ": [(">", "S", 1000, 0, 0), ("<", "RA", 0, 1001, 0)],
    "S0": [(">", "S", 1000, 0, 0)],
    "S1": [(">", "S", 1000, 0, 0), ("<", "SA", 5000, 1001, 0), (">", "A", 1001, 5001, 0)],
    "SH": [(">", "S", 1000, 0, 0), ("<", "SA", 5000, 1001, 0)],
    "RSTO": [(">", "S", 1000, 0, 0), ("<", "SA", 5000, 1001, 0), (">", "A", 1001, 5001, 0),
             (">", "RA", 1001, 5001, 0)],
    "RSTR": [(">", "S", 1000, 0, 0), ("<", "SA", 5000, 1001, 0), (">", "A", 1001, 5001, 0),
             ("<", "R", 5001, 0, 0)],
    "CLOSE_WAIT": [(">", "S", 1000, 0, 0), ("<", "SA", 5000, 1001, 0),
                   (">", "A", 1001, 5001, 0), (">", "FA", 1001, 5001, 0),
                   ("<", "A", 5001, 1002, 0)],
    "MIDSTREAM": [(">", "PA", 1001, 5001, 5), ("<", "A", 5001, 1006, 0)],
}

_connection = st.fixed_dictionaries({
    "shape": st.sampled_from(sorted(_SHAPES)),
    "client": st.integers(1, 6),
    "port": st.integers(1024, 1100),
    "server": st.integers(1, 3),
    "sport": st.sampled_from([80, 443]),
    "v6": st.booleans(),
    "start": st.floats(0, 20, allow_nan=False).map(lambda t: round(t, 6)),
    "gap": st.floats(0.0001, 0.5),
    "syn_retransmits": st.integers(0, 4),
})

_flood = st.fixed_dictionaries({
    "start": st.floats(0, 20, allow_nan=False),
    "syns": st.integers(1, 150),
    "span": st.floats(0.001, 3.0),
    "sources": st.integers(1, 150),
})


def _host(i, v6):
    return f"2001:db8::{i}" if v6 else f"10.0.0.{i}"


def _endpoint(host, port, v6):
    return f"[{host}]:{port}" if v6 else f"{host}:{port}"


def _packets(conns, floods):
    packets = []
    for c in conns:
        client = _endpoint(_host(c["client"], c["v6"]), c["port"], c["v6"])
        server = _endpoint(_host(100 + c["server"], c["v6"]), c["sport"], c["v6"])
        t = c["start"]
        shape = _SHAPES[c["shape"]]
        for i, (direction, letters, seq, ack, plen) in enumerate(shape):
            repeat = 1 + (c["syn_retransmits"] if letters == "S" else 0)
            for _ in range(repeat):
                packets.append((t, direction, letters, seq, ack, plen,
                                {"client": client, "server": server}))
                t += c["gap"]
    for f in floods:
        for i in range(f["syns"]):
            src = i % f["sources"]
            packets.append((f["start"] + f["span"] * i / f["syns"], ">", "S", 77 + i, 0, 0,
                            {"client": f"10.66.{src >> 8}.{src & 255}:{1024 + i}",
                             "server": "10.9.9.9:8080"}))
    packets.sort(key=lambda p: p[0])
    return packets


def check_invariants(d: dict) -> None:
    """What every report keeps, whatever the input."""
    json.dumps(d, allow_nan=False)
    for section, keys in REPORT_KEYS.items():
        assert section in d
        for k in keys or ():
            assert k in d[section], (section, k)
    cap = d["capture"]
    assert cap["packets"] == cap["tcp"] + cap["non_tcp"] + cap["malformed"]
    assert sum(cap["malformed_by_reason"].values()) == cap["malformed"]
    c = d["connections"]
    assert sum(c["by_state"].values()) == c["total"]
    assert c["ipv4"] + c["ipv6"] == c["total"]
    assert c["total"] <= cap["tcp"]
    h = d["handshakes"]
    assert h["completed"] + h["refused"] + h["unanswered"] <= c["total"]
    assert h["syn_retransmits"] >= 0
    for name in ("rtt", "syn_synack", "synack_ack"):
        p = h[name]
        if p["count"]:
            # not >= 0: packets without a timestamp (pcapng SPB) read as time 0
            assert p["p50"] <= p["p90"] <= p["p99"] <= p["max"]
        else:
            assert p["p50"] is None and p["max"] is None
    assert h["rtt"]["count"] <= h["completed"]
    t = d["teardowns"]
    assert t["fin"] + t["rst"] <= c["total"]
    assert t["by_orig"] + t["by_resp"] <= c["total"]
    assert 0 <= t["half_open"] <= c["total"]
    starts = [f["start"] for f in d["syn_flood"]]
    assert starts == sorted(starts)
    for f in d["syn_flood"]:
        assert f["start"] <= f["end"]
        assert 0 <= f["completed"] <= f["syns"]
        assert f["syns"] >= f["sources"] >= 1
        assert 0 < f["port"] < 65536


def _analyze(packets, **kw):
    from fastseg import _consts
    from fastseg.segments import Segments
    seg = build(packets) if packets else Segments.empty()
    seg.stats.counts[_consts.OUT_TCP] = len(seg)
    report = fastseg.analyze(seg, **kw)
    report.render()
    return report.to_dict()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(conns=st.lists(_connection, max_size=40), floods=st.lists(_flood, max_size=2),
       min_syns=st.integers(1, 60), window=st.floats(0.01, 3.0))
def test_report_invariants_hold_for_any_mix_of_connections(conns, floods, min_syns, window):
    d = _analyze(_packets(conns, floods), flood_min_syns=min_syns, flood_window=window)
    check_invariants(d)
    assert d["capture"]["tcp"] == len(_packets(conns, floods))
    # a server that only ever got stray SYNs is a suspect when enough of them
    # fall inside one window
    for f in floods:
        if f["syns"] >= min_syns and f["span"] <= window * 0.5:
            assert ("10.9.9.9", 8080) in {(x["server"], x["port"]) for x in d["syn_flood"]}


def test_empty_and_one_packet_reports():
    check_invariants(_analyze([]))
    one = _analyze([(1.0, ">", "S", 1, 0, 0)])
    check_invariants(one)
    assert one["connections"]["total"] == 1 and one["handshakes"]["unanswered"] == 1


def test_retransmitted_syns_of_completed_connections_are_not_a_flood():
    """A load test: 20 connections to one port inside 0.1 s, each SYN sent
    four times, every handshake completed.  Sixty retransmitted SYNs in one
    window are no flood (this used to flag the window and then fail to find
    its bounds among the stray SYNs, of which there are none)."""
    conns = [{"shape": "SF", "client": 1, "port": 2000 + i, "server": 1, "sport": 7000,
              "v6": False, "start": i * 0.005, "gap": 0.0001, "syn_retransmits": 3}
             for i in range(20)]
    d = _analyze(_packets(conns, []), flood_min_syns=50)
    check_invariants(d)
    assert d["handshakes"]["completed"] == 20 and d["handshakes"]["syn_retransmits"] == 60
    assert d["syn_flood"] == []


def test_flood_bounds_are_its_stray_syns():
    """Completed connections around a flood do not widen it: the entry runs
    from the first to the last spoofed SYN."""
    conns = [{"shape": "SF", "client": 1, "port": 2000 + i, "server": 9, "sport": 8080,
              "v6": False, "start": 0.9 + i * 0.1, "gap": 0.0001, "syn_retransmits": 1}
             for i in range(5)]
    floods = [{"start": 1.0, "syns": 60, "span": 0.3, "sources": 60}]
    packets = _packets(conns, floods)
    d = _analyze(packets, flood_min_syns=50)
    check_invariants(d)
    [f] = d["syn_flood"]
    assert (f["server"], f["port"], f["syns"], f["sources"]) == ("10.9.9.9", 8080, 60, 60)
    assert f["start"] == pytest.approx(1.0) and f["end"] == pytest.approx(1.0 + 0.3 * 59 / 60)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(DATA)))
def test_report_invariants_hold_for_every_committed_capture(path):
    try:
        report = fastseg.analyze(str(path))
    except fastseg.CaptureError:
        pytest.skip(f"{path.name} is damaged on purpose")
    report.render()
    check_invariants(report.to_dict())
