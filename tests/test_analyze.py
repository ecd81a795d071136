"""The analysis report against the ground truth of synthetic captures and the
known outcomes of the committed loopback captures."""
from pathlib import Path

import numpy as np
import pytest

import fastseg
from fastseg import synth
from hypothesis import given, settings, strategies as st

from fastseg.analyze import LogHistogram, connections_of

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def synthetic():
    p = synth.packets(5000, seed=3, bad_checksum_fraction=0.01)
    seg = fastseg.parse_packets(data=p.data, offset=p.offsets, caplen=p.caplens,
                                wirelen=p.lens, ts_ns=p.ts_ns, linktype=p.linktype)
    report = fastseg.analyze(seg, close_wait_threshold=1.0)
    truth = {k: np.asarray(v) for k, v in p.truth.items()}
    truth["kind"] = truth["kind"].astype(str)
    truth["close"] = truth["close"].astype(str)
    truth["closer"] = truth["closer"].astype(str)
    return report.to_dict(), truth, p


def _n(truth, **eq):
    m = np.ones(len(truth["kind"]), bool)
    for k, v in eq.items():
        m &= truth[k] == v
    return int(m.sum())


def test_capture_accounting_counts_every_packet(synthetic):
    d, truth, p = synthetic
    cap = d["capture"]
    assert cap["packets"] == len(p.offsets) == cap["tcp"] + cap["non_tcp"] + cap["malformed"]
    assert cap["tcp"] == int(truth["packets"].sum())   # damaged copies included


def test_bad_checksums_are_exactly_the_damaged_copies(synthetic):
    d, truth, _ = synthetic
    assert d["checksums"]["bad"] == int(truth["bad_checksums"].sum()) > 0
    assert d["checksums"]["offload"] == []


def test_completed_refused_and_syn_counts(synthetic):
    d, truth, _ = synthetic
    h = d["handshakes"]
    assert h["completed"] == int(truth["handshake_completed"].sum())
    assert h["refused"] == _n(truth, kind="refused")
    # Zeek's rule splits unanswered SYNs more than 5 s apart into new
    # connections: retransmits counted plus extra connections = truth's retransmits
    extra = d["connections"]["total"] - len(truth["kind"])
    assert h["syn_retransmits"] + extra == int((truth["syn_count"] - 1).sum())
    assert d["teardowns"]["port_reuse"] == extra


def test_unanswered_covers_every_silent_server(synthetic):
    d, truth, _ = synthetic
    silent = int(((truth["synack_count"] == 0) & (truth["kind"] != "refused")).sum())
    extra = d["connections"]["total"] - len(truth["kind"])
    assert d["handshakes"]["unanswered"] == silent + extra


def test_rtt_percentiles_equal_the_truth(synthetic):
    d, truth, _ = synthetic
    rtt = truth["handshake_rtt"][truth["handshake_completed"].astype(bool)] / 1e9  # ns in memory
    got = d["handshakes"]["rtt"]
    p50, p90, p99 = np.percentile(rtt, [50, 90, 99])
    assert got["count"] == len(rtt)
    # quantiles come from log-bucket histograms, within their relative error
    err = LogHistogram.RELATIVE_ERROR
    assert got["p50"] == pytest.approx(p50, rel=err)
    assert got["p90"] == pytest.approx(p90, rel=err)
    assert got["p99"] == pytest.approx(p99, rel=err)
    assert got["max"] == pytest.approx(rtt.max(), abs=2e-6)


def test_teardowns_by_kind_and_side(synthetic):
    d, truth, _ = synthetic
    t = d["teardowns"]
    assert t["fin"] == _n(truth, close="fin")
    assert t["rst"] == _n(truth, close="rst")
    assert t["by_orig"] == _n(truth, closer="orig")
    assert t["by_resp"] == _n(truth, closer="resp")
    # the side that sends the first FIN holds TIME-WAIT, unless its peer never FINs
    assert t["time_wait"]["held_by_orig"] == _n(truth, close="fin", closer="orig") - _n(truth, kind="close_wait")
    assert t["time_wait"]["held_by_resp"] == _n(truth, close="fin", closer="resp")
    assert t["close_wait_leaks"] == _n(truth, kind="close_wait") > 0
    assert t["half_open"] == _n(truth, kind="half_open") > 0


def test_time_wait_peak_is_the_interval_maximum(synthetic):
    d, truth, _ = synthetic
    peaks = d["teardowns"]["time_wait"]["peak_per_server"]
    assert peaks and peaks == sorted(peaks, key=lambda p: -p["peak"])
    assert all(p["peak"] >= 1 for p in peaks)


def test_syn_flood_names_the_attacked_server(synthetic):
    d, truth, _ = synthetic
    flood = truth["kind"] == "flood"
    servers = set(zip(truth["server"][flood].tolist(), truth["server_port"][flood].tolist()))
    found = {(f["server"], f["port"]) for f in d["syn_flood"]}
    assert found == servers
    for f in d["syn_flood"]:
        m = flood & (truth["server"] == f["server"]) & (truth["server_port"] == f["port"])
        syn_ts = truth["syn_ts_ns"][m] / 1e9
        assert f["start"] <= syn_ts.min() + 0.2 and f["end"] >= syn_ts.max() - 0.2
        assert f["sources"] >= 0.95 * m.sum()
        assert f["completed"] < 0.2 * f["syns"]


def test_no_flood_without_one():
    p = synth.packets(3000, seed=5, mix={"fin_orig": 1.0})
    seg = fastseg.parse_packets(data=p.data, offset=p.offsets, caplen=p.caplens,
                                wirelen=p.lens, ts_ns=p.ts_ns, linktype=p.linktype)
    assert fastseg.analyze(seg)["syn_flood"] == []


def test_tfo_counts(synthetic):
    d, truth, _ = synthetic
    assert d["tfo"]["syn_with_data"] == int((truth["tfo_data"] > 0).sum()) > 0
    assert d["tfo"]["cookie_requests"] == _n(truth, kind="tfo_request") > 0


def test_option_mix_counts_offered_mss(synthetic):
    d, truth, _ = synthetic
    mss = d["options"]["mss"]
    offered = truth["mss"][truth["mss"] > 0]
    vals, counts = np.unique(offered, return_counts=True)
    top = dict(zip(map(str, vals.tolist()), counts.tolist()))
    for k, v in mss.items():
        assert v >= top.get(k, 0) * 0.9


def test_loopback_capture_known_outcomes():
    """tests/data/README.md lists what each connection of lo_conv.pcap ended as."""
    d = fastseg.analyze(str(DATA / "lo_conv.pcap")).to_dict()
    assert d["checksums"]["offload"], "loopback checksums are offloaded"
    assert d["handshakes"]["refused"] >= 1
    assert d["teardowns"]["rst"] >= 2
    assert d["teardowns"]["time_wait"]["held_by_orig"] >= 1
    assert d["teardowns"]["time_wait"]["held_by_resp"] >= 1
    assert d["tfo"]["cookie_requests"] >= 1 and d["tfo"]["syn_with_data"] >= 1
    assert d["connections"]["by_state"].get("S2", 0) >= 1       # the CLOSE-WAIT leak


def test_streaming_equals_one_shot(tmp_path):
    path = tmp_path / "s.pcap"
    synth.generate(str(path), connections=3000, seed=9)
    whole = fastseg.analyze(fastseg.read_segments(str(path))).to_dict()
    streamed = fastseg.analyze(str(path), batch_packets=997).to_dict()
    whole.pop("files"), streamed.pop("files")
    assert whole == streamed


def test_real_syn_flood_capture_is_detected():
    """syn_flood.pcap (make_flood.sh): 450 spoofed SYNs at 10.77.0.2:8080 from
    450 sources inside ~0.5 s, and 20 legitimate connections around it."""
    d = fastseg.analyze(str(DATA / "syn_flood.pcap")).to_dict()
    assert len(d["syn_flood"]) == 1
    f = d["syn_flood"][0]
    assert (f["server"], f["port"]) == ("10.77.0.2", 8080)
    assert 450 <= f["syns"] <= 470 and 450 <= f["sources"] <= 452
    assert f["completed"] < 20
    assert d["connections"]["by_state"]["SF"] == 20
    assert d["handshakes"]["completed"] == 20


def test_same_input_same_output_across_processes_and_batch_sizes(tmp_path):
    """uids and every connection row are the same in another process (another
    flow-table secret), with another batch size, and on threads."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "d.pcap"
    synth.generate(str(path), connections=2000, seed=12)
    code = ("import sys, fastseg; c = fastseg.analyze(sys.argv[1], keep_connections=True, "
            "batch_packets=int(sys.argv[2])).connections; "
            "print('\\n'.join(f'{u} {s} {h} {b}' for u, s, h, b in "
            "zip(c['uid'], c['conn_state'], c['history'], c['orig_bytes'])))")
    outs = [subprocess.run([sys.executable, "-c", code, str(path), str(b)], check=True,
                           capture_output=True, text=True).stdout for b in (997, 262144)]
    assert outs[0] == outs[1] and len(outs[0].splitlines()) >= 2000

    def uids(batch):
        return fastseg.analyze(str(path), keep_connections=True,
                               batch_packets=batch).connections["uid"].tolist()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(uids, [500, 5000, 50000, 262144]))
    assert all(r == results[0] for r in results)
    assert "\n".join(results[0]) == "\n".join(l.split()[0] for l in outs[0].splitlines())


def _anonymise(src: Path, dst: Path) -> int:
    """Rewrite every IPv4 address of an Ethernet pcap as an anonymiser that
    fixes only the IP header checksum does (tcpdpriv-style): TCP checksums go
    stale, and not in the offload pattern.  Returns the packets rewritten."""
    import struct
    raw = bytearray(src.read_bytes())
    pos, n = 24, 0
    while pos + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, pos + 8)[0]
        ip = pos + 16 + 14
        if raw[pos + 16 + 12:pos + 16 + 14] == b"\x08\x00":
            for at in (ip + 12, ip + 16):
                raw[at:at + 4] = bytes(b ^ m for b, m in zip(raw[at:at + 4], b"\x5a\x21\x07\x00"))
            ihl = (raw[ip] & 15) * 4
            raw[ip + 10:ip + 12] = b"\0\0"
            s = sum(struct.unpack_from(f">{ihl // 2}H", raw, ip))
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            raw[ip + 10:ip + 12] = struct.pack(">H", ~s & 0xFFFF)
            n += 1
        pos += 16 + incl
    dst.write_bytes(bytes(raw))
    return n


def test_rewritten_trace_checksums_are_ignored_and_reported(tmp_path):
    """A trace whose addresses were rewritten without fixing TCP checksums
    has bad checksums almost everywhere, not in the offload pattern: auto
    mode tracks it as if checksums were ignored and says so, where verify
    mode sees only dropped segments (zero-packet connections, history C)."""
    path = tmp_path / "anon.pcap"
    assert _anonymise(DATA / "checksum" / "veth_real.pcap", path) == 46
    verify = fastseg.analyze(str(path), checksums="verify").to_dict()
    assert verify["checksums"]["bad"] == 46 and not verify["checksums"]["untrusted"]
    v4_dropped = connections_of(str(path), checksums="verify")
    v4 = np.asarray(v4_dropped["ip_version"]) == 4
    assert all(set(h) <= set("^Cc") for h in np.asarray(v4_dropped["history"])[v4])
    assert (np.asarray(v4_dropped["orig_pkts"])[v4] == 0).all()
    with pytest.warns(UserWarning, match="checksums are wrong almost everywhere"):
        auto = fastseg.analyze(str(path)).to_dict()
    ignore = fastseg.analyze(str(path), checksums="ignore").to_dict()
    assert auto["checksums"]["untrusted"] and auto["checksums"]["offload"] == []
    for key in ("connections", "handshakes", "teardowns"):
        assert auto[key] == ignore[key], key
    assert auto["connections"]["by_state"] == {"SF": 4}
    assert auto["handshakes"]["completed"] == 4


def test_threads_do_not_change_the_report_or_the_connections(tmp_path):
    """Reading ahead on a second thread (-j 2) gives the report and the
    connection rows of one thread, with batches small enough that many are
    in flight."""
    path = tmp_path / "t.pcap"
    synth.generate(str(path), connections=3000, seed=21)
    one = fastseg.analyze(str(path), threads=1, keep_connections=True, batch_packets=1000)
    two = fastseg.analyze(str(path), threads=2, keep_connections=True, batch_packets=1000)
    assert one.to_dict() == two.to_dict()
    assert one.to_dict()["connections"]["total"] >= 3000
    for name in ("uid", "conn_state", "history", "orig_bytes", "resp_bytes", "ack_ts"):
        np.testing.assert_array_equal(one.connections[name], two.connections[name])


def test_threads_raise_the_same_error_on_a_damaged_record(tmp_path):
    """A record header damaged in the middle of a capture raises the same
    CaptureError whether the reading runs on its own thread or not."""
    import struct
    path = tmp_path / "d.pcap"
    synth.generate(str(path), connections=400, seed=2)
    raw = bytearray(path.read_bytes())
    pos, offsets = 24, []
    while pos + 16 <= len(raw):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]
    struct.pack_into("<II", raw, offsets[len(offsets) // 2] + 8, 0x7FFFFFF0, 0x7FFFFFF0)
    path.write_bytes(bytes(raw))
    errors = []
    for threads in (1, 2):
        with pytest.raises(fastseg.CaptureError) as info:
            fastseg.analyze(str(path), threads=threads, batch_packets=100)
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "byte offset" in errors[0]


def test_reports_of_two_parts_merge_into_the_report_of_the_whole():
    """Aggregates are mergeable: the analyses of two parts of a capture (no
    connection spanning them) add up to the analysis of both read as one,
    SYN floods, TIME-WAIT peaks, quantiles and the offload verdict included."""
    from fastseg.analyze import _Analysis
    flood = fastseg.read_segments(str(DATA / "syn_flood.pcap"))
    loop = fastseg.read_segments(str(DATA / "lo_conv.pcap"))
    whole = fastseg.analyze(fastseg.Segments.concat([flood, loop]),
                            keep_connections=True).to_dict()
    first, second = _Analysis(keep_connections=True), _Analysis(keep_connections=True)
    first.add(flood)
    second.add(loop)
    merged = first.merge(second).finish([])
    assert merged.to_dict() == whole
    assert whole["syn_flood"] and whole["checksums"]["offload"]
    assert list(merged.connections["_conn"]) == list(range(len(merged.connections)))


def test_streamed_connections_come_in_first_seen_order(tmp_path):
    """on_connections gets every connection once, in the order track() gives
    them, across many small batches (a connection that stays open holds back
    the ones that started after it, so this capture comes in a few chunks)."""
    path = tmp_path / "s.pcap"
    synth.generate(str(path), connections=1500, seed=4)
    chunks = []
    report = fastseg.analyze(str(path), on_connections=chunks.append, batch_packets=300)
    assert report.connections is None and len(chunks) >= 2
    streamed = np.concatenate([c["uid"] for c in chunks])
    whole = fastseg.track(fastseg.read_segments(str(path)))
    assert streamed.tolist() == whole["uid"].tolist()


def test_stream_connections_without_aggregates(tmp_path):
    """The conns path (no report aggregates) hands on the same connections,
    in the same chunks, and the same capture accounting as analyze()."""
    from fastseg.analyze import stream_connections
    path = tmp_path / "s.pcap"
    synth.generate(str(path), connections=1500, seed=4)
    full, lean = [], []
    report = fastseg.analyze(str(path), on_connections=full.append, batch_packets=300).to_dict()
    head = stream_connections(str(path), lean.append, batch_packets=300, threads=2)
    assert set(head) == {"files", "capture", "checksums"}
    assert head == {k: report[k] for k in head}
    assert [len(c) for c in lean] == [len(c) for c in full]
    for a, b in zip(lean, full):
        for name in a.columns:
            np.testing.assert_array_equal(a[name], b[name])
    # text columns handed on as bytes too: the writers' text is unchanged
    import io
    from fastseg.output import format_table
    with_bytes = []
    stream_connections(str(path), with_bytes.append, batch_packets=300, text_bytes=True)
    assert "_b_history" in with_bytes[0] and "_b_history" not in lean[0]
    for a, b in zip(with_bytes, lean):
        assert a.columns == b.columns
        for fmt in ("jsonl", "csv"):
            assert format_table(a, fmt) == format_table(b, fmt)
        za, zb = io.StringIO(), io.StringIO()
        a.to_zeek(za, header=False, footer=False)
        b.to_zeek(zb, header=False, footer=False)
        assert za.getvalue() == zb.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(-10**9, 10**13), max_size=60), min_size=1, max_size=3))
def test_log_histogram_quantiles_within_relative_error(parts):
    """Quantiles of merged histograms (ns-resolution durations, both signs)
    against numpy's exact percentiles of all the values."""
    hists = []
    for part in parts:
        h = LogHistogram()
        h.add(np.array(part, np.float64) / 1e9)
        hists.append(h)
    for h in hists[1:]:
        hists[0].merge(h)
    got = hists[0].summary()
    values = np.concatenate([np.array(p, np.float64) for p in parts]) / 1e9
    assert got["count"] == len(values)
    if len(values) == 0:
        assert got["p50"] is None and got["max"] is None
        return
    ordered = np.sort(values)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        want = np.percentile(values, 100 * q)
        rank = (len(values) - 1) * q
        lo, hi = int(np.floor(rank)), int(np.ceil(rank))
        f = rank - lo
        # each order statistic is off by at most RELATIVE_ERROR of itself
        mag = (1 - f) * abs(ordered[lo]) + f * abs(ordered[hi])
        assert abs(got[name] - want) <= LogHistogram.RELATIVE_ERROR * 1.0001 * mag + 1e-15
    assert got["max"] == values.max()
