"""Loss analysis against Wireshark: tcp.analysis flags, ack_rtt,
bytes_in_flight and dup_ack_num per segment, compared frame by frame with
tshark on real captures (tests/data/loss, made by make_loss.sh through a
user-space netem) and on hand-built segment sequences, one per flag; the
per-connection counters against tshark's flags and tcptrace."""
import math
from pathlib import Path

import numpy as np
import pytest

import fastseg
from fastseg import loss
from capfiles import pcap
from oracle import ANALYSIS_FIELDS, tshark_analysis
from refs import zeek_dev, ipv4, opt_mss, opt_nop, opt_sack, opt_sack_perm, opt_wscale, tcp

DATA = Path(__file__).parent / "data"
LOSS_CAPTURES = sorted((DATA / "loss").glob("*.pcap"))
_ZEEK_DEV = zeek_dev()
ZEEK_TRACES = _ZEEK_DEV / "traces" if _ZEEK_DEV else Path("/nonexistent")

# Every frame where fastseg and tshark 4.0 disagree on the committed
# captures (flags, ack_rtt, bytes_in_flight or dup_ack_num), with the reason.
_NOT_SEGMENTS = ("a frame before it is not a segment for fastseg (malformed), so the state "
                 "it would have set is missing")
_CUT = ("options cut by the snapshot length: fastseg, like tshark's dissector for most "
        "such segments, leaves them out of the sequence analysis; tshark still analysed "
        "the one that this frame acknowledges (or this one)")
KNOWN_DIFFERENCES = {
    ("veth_sack.pcap", 37): "a second ACK beyond an unseen segment: tshark 4.0 flags "
                            "ACKed-unseen once per hole with a rule that later "
                            "versions rewrote; fastseg follows the 4.0 code it reads",
    **{("synth_malformed.pcap", f): _NOT_SEGMENTS for f in (2, 3, 12)},
    **{("lo_snap80.pcap", f): _CUT for f in (45, 52, 72, 108)},
    ("snap110_vxlan.pcap", 15): _CUT,
    ("snap60_overlay.pcap", 15): _CUT,
    **{("synth_frag.pcap", f): "IP fragments: tshark does not know a first fragment's "
                               "segment length and skips its sequence analysis"
       for f in (5, 11, 13)},
    **{("encap_two_tunnels.pcap", f): "the same inner 4-tuple in two VXLAN networks: fastseg "
                                      "keeps the connections apart by VNI, tshark sees one "
                                      "stream whose second copy is retransmitted"
       for f in (69, 70, 72, 74, 75, 76, 77, 80, 82, 83, 85, 88, 89, 91, 92, 93, 94, 95, 96,
                 99, 100, 102, 104, 105, 106, 107, 112, 113, 115, 117, 118, 119, 120, 122,
                 123, 125)},
}
# Files whose times cannot be compared: pcapng simple packet blocks carry no
# timestamps (fastseg: -1, tshark: 0), so only the flags are compared there.
NO_TIMESTAMPS = {"lo_conv_spb.pcapng"}
KNOWN_DIFFERENCES[("lo_conv_spb.pcapng", 84)] = "no timestamps: see NO_TIMESTAMPS"

# The same for the Zeek traces (real captures from elsewhere).
KNOWN_EXTERNAL = {
    "missing_ldap_logs.pcapng": "frames whose IP length runs past the frame are malformed "
                                "for fastseg, so the segments after them look like gaps",
    "missing_krbtgt_ldap_request.pcapng": "as missing_ldap_logs.pcapng",
    "retransmit-timeout.pcapng": "300 s of silence: the idle timeout (Zeek's 5 min) "
                                 "starts a new connection, Wireshark keeps one stream",
}


def _analyzed(path):
    seg = fastseg.read_segments(str(path))
    conns = fastseg.track(seg)
    per_conn = loss.analyze_segments(seg, conns)
    return seg, conns, per_conn


def _compare(path):
    """(per-flag counts {flag: [ours, tshark, both]}, differing frames,
    ack_rtt pairs, bytes_in_flight mismatches, dup_ack_num mismatches)."""
    seg, _, _ = _analyzed(path)
    theirs = tshark_analysis(str(path))
    names = loss.flag_names(seg["analysis"])
    counts = {f: [0, 0, 0] for f in ANALYSIS_FIELDS}
    diffs, rtt_bad, bif_bad, dup_bad = [], [], [], []
    for i, frame in enumerate(seg["frame"].tolist()):
        t = theirs.get(frame)
        if t is None:
            continue
        mine = set(names[i])
        for f in ANALYSIS_FIELDS:
            counts[f][0] += f in mine
            counts[f][1] += f in t[0]
            counts[f][2] += f in mine and f in t[0]
        if mine != set(t[0]):
            diffs.append(frame)
        ours_rtt = seg["ack_rtt"][i]
        if not (math.isnan(ours_rtt) and math.isnan(t[1])):
            if math.isnan(ours_rtt) or math.isnan(t[1]) or abs(ours_rtt - t[1]) > 1e-6:
                rtt_bad.append(frame)
        if seg["bytes_in_flight"][i] != t[2]:
            bif_bad.append(frame)
        if seg["dup_ack_num"][i] != t[3]:
            dup_bad.append(frame)
    return counts, diffs, rtt_bad, bif_bad, dup_bad


def _committed():
    out = list(LOSS_CAPTURES)
    out += sorted(p for p in DATA.glob("*.pcap*") if not p.name.endswith((".gz", ".zst")))
    return out


@pytest.mark.parametrize("path", _committed(), ids=lambda p: p.name)
def test_every_frame_agrees_with_tshark_or_is_a_named_difference(tshark, path):
    counts, diffs, rtt_bad, bif_bad, dup_bad = _compare(path)
    known = {frame for (name, frame) in KNOWN_DIFFERENCES if name == path.name}
    if path.name in NO_TIMESTAMPS:
        rtt_bad = bif_bad = []
    assert set(diffs) | set(rtt_bad) | set(bif_bad) | set(dup_bad) == known


def test_loss_captures_show_every_kind_of_trouble(tshark):
    """The captures exercise what they were made for, and every flag tshark
    raises on them is raised by fastseg on the same frames."""
    total = {f: [0, 0, 0] for f in ANALYSIS_FIELDS}
    for path in LOSS_CAPTURES:
        counts = _compare(path)[0]
        for f in ANALYSIS_FIELDS:
            for k in range(3):
                total[f][k] += counts[f][k]
    for f in ("retransmission", "fast_retransmission", "spurious_retransmission",
              "out_of_order", "lost_segment", "duplicate_ack", "zero_window",
              "window_full", "window_update", "keep_alive", "keep_alive_ack"):
        assert total[f][1] > 0, f
    for f, (ours, theirs, both) in total.items():
        assert ours == theirs == both, f


def test_ack_rtt_matches_tshark_within_a_microsecond(tshark):
    pairs = 0
    for path in LOSS_CAPTURES:
        seg, _, _ = _analyzed(path)
        theirs = tshark_analysis(str(path))
        for frame, rtt in zip(seg["frame"].tolist(), seg["ack_rtt"].tolist()):
            t = theirs[frame][1]
            assert math.isnan(rtt) == math.isnan(t), (path.name, frame)
            if not math.isnan(t):
                assert abs(rtt - t) <= 1e-6
                pairs += 1
    assert pairs > 500


@pytest.mark.skipif(not ZEEK_TRACES.is_dir(), reason="../shared/zeek-dev (Zeek's traces) is not here")
def test_zeek_traces_agree_with_tshark(tshark):
    """Real captures nobody here made: per flag, at least 99.5% of the
    packets either tool flags are flagged by both, outside the files whose
    differences are named."""
    total = {f: [0, 0, 0] for f in ANALYSIS_FIELDS}
    files = sorted(p for p in ZEEK_TRACES.rglob("*")
                   if p.is_file() and p.suffix in (".pcap", ".pcapng", ".trace"))
    for path in files:
        if path.name in KNOWN_EXTERNAL:
            continue
        counts, diffs, rtt_bad, bif_bad, _ = _compare(path)
        for f in ANALYSIS_FIELDS:
            for k in range(3):
                total[f][k] += counts[f][k]
    flagged = 0
    for f, (ours, theirs, both) in total.items():
        union = ours + theirs - both
        flagged += union
        if union:
            assert both / union >= 0.995, (f, ours, theirs, both)
    assert flagged > 200


# -- hand-built sequences ----------------------------------------------------

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)
ISN_C, ISN_S = 1000, 5000


def _write(tmp_path, packets, name="hand.pcap"):
    """``packets``: (ms, 'c'|'s', flags, rel_seq, rel_ack, length, window[, options])."""
    frames = []
    for pkt in packets:
        ms, who, flags, seq, ack, length, window = pkt[:7]
        options = pkt[7] if len(pkt) > 7 else b""
        src, dst = (C, S) if who == "c" else (S, C)
        isn_tx, isn_rx = (ISN_C, ISN_S) if who == "c" else (ISN_S, ISN_C)
        bits = sum({"S": 0x02, "A": 0x10, "F": 0x01, "R": 0x04, "P": 0x08}[ch] for ch in flags)
        seg = tcp(sport=src[1], dport=dst[1], seq=isn_tx + seq, ack=(isn_rx + ack) if "A" in flags else 0,
                  flags=bits, window=window, options=options, payload=b"d" * length)
        us = int(round(ms * 1000))
        frames.append((1_700_000_000 + us // 1_000_000, us % 1_000_000,
                       ipv4(src[0], dst[0], seg)))
    path = tmp_path / name
    path.write_bytes(pcap(frames, linktype=101))
    return path


HANDSHAKE = [
    (0, "c", "S", 0, 0, 0, 64240, opt_mss(1460) + opt_sack_perm()),
    (10, "s", "SA", 0, 1, 0, 65160, opt_mss(1460) + opt_sack_perm()),
    (20, "c", "A", 1, 1, 0, 64240),
]

# name -> (segments after the handshake, {frame: expected flags}); frames
# count from 1 and the handshake is frames 1..3.
SEQUENCES = {
    "retransmission": ([
        (30, "c", "A", 1, 1, 100, 64240),
        (31, "c", "A", 101, 1, 100, 64240),
        (300, "c", "A", 1, 1, 100, 64240),
    ], {6: {"retransmission"}}),
    "fast_retransmission": ([
        (30, "c", "A", 1, 1, 100, 64240),
        (31, "c", "A", 201, 1, 100, 64240),        # 101..200 lost before the capture
        (32, "c", "A", 301, 1, 100, 64240),
        (41, "s", "A", 1, 101, 0, 65160),
        (42, "s", "A", 1, 101, 0, 65160),
        (43, "s", "A", 1, 101, 0, 65160),
        (45, "c", "A", 101, 1, 100, 64240),
    ], {5: {"lost_segment"}, 8: {"duplicate_ack"}, 9: {"duplicate_ack"},
        10: {"fast_retransmission", "retransmission"}}),
    "spurious_retransmission": ([
        (30, "c", "A", 1, 1, 100, 64240),
        (40, "s", "A", 1, 101, 0, 65160),
        (300, "c", "A", 1, 1, 100, 64240),
    ], {6: {"spurious_retransmission", "retransmission"}}),
    "out_of_order": ([
        (30, "c", "A", 101, 1, 100, 64240),
        (31, "c", "A", 1, 1, 100, 64240),           # within the 20 ms iRTT
    ], {4: {"lost_segment"}, 5: {"out_of_order"}}),
    "ack_lost_segment": ([
        (30, "c", "A", 1, 1, 100, 64240),
        (40, "s", "A", 1, 301, 0, 65160),           # acks data never seen
    ], {5: {"ack_lost_segment"}}),
    "zero_window_and_probes": ([
        (30, "c", "A", 1, 1, 100, 64240),
        (40, "s", "A", 1, 101, 0, 0),
        (240, "c", "A", 101, 1, 1, 64240),          # one byte at the edge
        (250, "s", "A", 1, 101, 0, 0),
        (450, "s", "A", 1, 101, 0, 8192),
    ], {5: {"zero_window"}, 6: {"zero_window_probe"},
        7: {"zero_window", "zero_window_probe_ack"}, 8: {"window_update"}}),
    "window_full": ([
        (30, "s", "A", 1, 1, 0, 300),               # window 300, no scaling negotiated
        (40, "c", "A", 1, 1, 300, 64240),
    ], {4: {"window_update"}, 5: {"window_full"}}),
    "keep_alive": ([
        (30, "c", "A", 1, 1, 100, 64240),
        (40, "s", "A", 1, 101, 0, 65160),
        (5000, "c", "A", 100, 1, 0, 64240),         # one byte behind: Linux's probe
        (5010, "s", "A", 1, 101, 0, 65160),
        (6000, "c", "A", 100, 1, 0, 64240),
        (6010, "s", "A", 1, 101, 0, 65160),
    ], {6: {"keep_alive"}, 7: {"keep_alive_ack"}, 8: {"keep_alive"}, 9: {"keep_alive_ack"}}),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_hand_built_sequence_flags(tmp_path, name, tshark):
    body, expected = SEQUENCES[name]
    path = _write(tmp_path, HANDSHAKE + body, f"{name}.pcap")
    seg, _, _ = _analyzed(path)
    names = loss.flag_names(seg["analysis"])
    got = {f: set(n) for f, n in zip(seg["frame"].tolist(), names) if n}
    assert got == expected
    theirs = {f: set(t[0]) for f, t in tshark_analysis(str(path)).items() if t[0]}
    assert theirs == expected


def test_ack_rtt_dup_ack_num_and_bytes_in_flight_by_hand(tmp_path):
    path = _write(tmp_path, HANDSHAKE + SEQUENCES["fast_retransmission"][0])
    seg, _, _ = _analyzed(path)
    rtt = seg["ack_rtt"]
    assert rtt[1] == pytest.approx(0.010)           # SYN-ACK acks the SYN
    assert rtt[2] == pytest.approx(0.010)           # ACK acks the SYN-ACK
    assert rtt[6] == pytest.approx(0.011)           # ACK 101 acks frame 4
    assert np.isnan(rtt[7]) and np.isnan(rtt[8])    # duplicates ack nothing new
    assert seg["dup_ack_num"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 2, 0]
    # frames 4, 5, 6: 100, then 1..100 + 201..300 spans 300 bytes, then 400;
    # the lost segment stops the count until the peer acks
    assert seg["bytes_in_flight"].tolist()[3:6] == [100, -1, -1]


def test_sack_blocks_leave_bytes_in_flight(tmp_path):
    """Wireshark subtracts what the peer's latest SACK option covers."""
    body = [
        (30, "c", "A", 1, 1, 100, 64240),
        (31, "c", "A", 101, 1, 100, 64240),
        (32, "c", "A", 201, 1, 100, 64240),
        (40, "s", "A", 1, 1, 0, 65160, opt_nop() + opt_nop() + opt_sack([(ISN_C + 101, ISN_C + 201)])),
        (45, "c", "A", 301, 1, 100, 64240),
    ]
    path = _write(tmp_path, HANDSHAKE + body)
    seg, _, _ = _analyzed(path)
    assert seg["bytes_in_flight"][7] == 400 - 100
    theirs = tshark_analysis(str(path))
    assert theirs[8][2] == 300


def test_window_scale_from_the_handshake(tmp_path):
    """Windows are scaled by the shift each side offered when both did."""
    hs = [
        (0, "c", "S", 0, 0, 0, 64240, opt_wscale(7)),
        (10, "s", "SA", 0, 1, 0, 65160, opt_wscale(2)),
        (20, "c", "A", 1, 1, 0, 501),
        (30, "s", "A", 1, 1, 0, 50),                # 200 bytes with the shift of 2
        (40, "c", "A", 1, 1, 200, 501),
    ]
    path = _write(tmp_path, hs)
    seg, _, _ = _analyzed(path)
    theirs = tshark_analysis(str(path))
    names = loss.flag_names(seg["analysis"])
    for i, frame in enumerate(seg["frame"].tolist()):
        assert set(names[i]) == set(theirs[frame][0])


# -- per connection -----------------------------------------------------------

def _conn_of(path):
    seg, conns, per_conn = _analyzed(path)
    assert len(conns) == 1
    return seg, {k: v[0] for k, v in per_conn.items()}


def test_per_connection_counts_are_the_segment_flags(tshark):
    for path in LOSS_CAPTURES:
        seg, row = _conn_of(path)
        conns = fastseg.track(fastseg.read_segments(str(path)))
        side = (seg["src"] != conns["orig_h"][0]).any(axis=1) | (seg["sport"] != conns["orig_p"][0])
        a = seg["analysis"].astype(np.int64)
        for s, prefix in ((0, "orig"), (1, "resp")):
            mine = side == s
            def n(flag):
                return int(((a & fastseg.ANALYSIS_FLAGS[flag]) != 0)[mine].sum())
            assert row[f"{prefix}_retrans_pkts"] == n("retransmission")
            assert row[f"{prefix}_fast_retrans"] == n("fast_retransmission")
            assert row[f"{prefix}_spurious_retrans"] == n("spurious_retransmission")
            assert row[f"{prefix}_out_of_order"] == n("out_of_order")
            assert row[f"{prefix}_lost_segments"] == n("lost_segment")
            assert row[f"{prefix}_dup_acks"] == n("duplicate_ack")
            assert row[f"{prefix}_keepalives"] == n("keep_alive")
            assert row[f"{prefix}_zero_windows"] == n("zero_window")
            bif = seg["bytes_in_flight"][mine]
            assert row[f"{prefix}_max_in_flight"] == max(0, int(bif.max(initial=-1)))


def test_zero_window_stall_is_on_the_slow_reader(tshark):
    _, row = _conn_of(DATA / "loss" / "loss_zerowin_client.pcap")
    assert row["resp_zero_windows"] > 0 and row["orig_zero_windows"] == 0
    assert row["resp_zero_window_time"] > 0.05
    assert row["orig_zero_window_time"] == 0


def test_keepalives_on_an_idle_connection(tshark):
    _, row = _conn_of(DATA / "loss" / "loss_keepalive_client.pcap")
    assert row["orig_keepalives"] >= 3
    assert row["orig_retrans_pkts"] == 0


def test_rto_backoff_retransmissions_grow_apart(tshark):
    seg, row = _conn_of(DATA / "loss" / "loss_rto_client.pcap")
    retrans = (seg["analysis"] & fastseg.ANALYSIS_FLAGS["retransmission"]) != 0
    ts = seg["ts_ns"][retrans] / 1e9
    gaps = np.diff(ts)
    assert row["orig_retrans_pkts"] >= 4
    assert (gaps[-3:] > 0.15).all() and gaps[-1] > gaps[-3]


def test_first_flight_matches_tcptrace():
    """tcptrace -l: 'initial window' bytes and packets per side."""
    import shutil
    import subprocess
    if shutil.which("tcptrace") is None:
        pytest.skip("tcptrace not installed")
    for name in ("loss_loss_client.pcap", "loss_delay_server.pcap", "loss_dup_client.pcap"):
        path = DATA / "loss" / name
        out = subprocess.run(["tcptrace", "-l", str(path)], capture_output=True, text=True).stdout
        rows = [line.split() for line in out.splitlines() if "initial window:" in line]
        a_bytes, b_bytes = int(rows[0][2]), int(rows[0][6])
        a_pkts, b_pkts = int(rows[1][2]), int(rows[1][6])
        _, row = _conn_of(path)
        assert (row["orig_first_flight_bytes"], row["resp_first_flight_bytes"]) == (a_bytes, b_bytes)
        assert (row["orig_first_flight_segs"], row["resp_first_flight_segs"]) == (a_pkts, b_pkts)


def test_rtt_summary_and_ttfb(tshark):
    """RTT statistics come from the ACKs of data segments (tshark's ack_rtt
    where the acked frame carries payload)."""
    from oracle import _run
    path = DATA / "loss" / "loss_delay_client.pcap"
    seg, row = _conn_of(path)
    rows = [line.split("\t") for line in _run(
        ["-r", str(path), "-n", "-T", "fields", "-e", "frame.number", "-e", "tcp.len",
         "-e", "tcp.analysis.acks_frame", "-e", "tcp.analysis.ack_rtt"]).splitlines()]
    length = {int(r[0]): int(r[1]) for r in rows}
    client = seg["src"][:, 15] == 1                    # 10.88.0.1
    client_frames = set(seg["frame"][client].tolist())
    rtts = [float(r[3]) for r in rows
            if r[2] and int(r[2]) in client_frames and length[int(r[2])] > 0]
    assert row["orig_rtt_samples"] == len(rtts)
    assert row["orig_rtt_min"] == pytest.approx(min(rtts), abs=1e-9)
    assert row["orig_rtt_max"] == pytest.approx(max(rtts), abs=1e-9)
    assert row["orig_rtt_avg"] == pytest.approx(sum(rtts) / len(rtts), abs=1e-9)
    assert 0.035 < row["orig_rtt_min"] < 0.05          # 2 x 20 ms through the relay
    data = seg["payload_len"] > 0
    first_c = seg["ts_ns"][data & client][0]
    first_s = seg["ts_ns"][data & ~client][0]
    assert row["ttfb"] == pytest.approx((first_s - first_c) / 1e9)


def test_analysis_flags_are_named_as_tshark_fields():
    assert list(fastseg.ANALYSIS_FLAGS) == list(ANALYSIS_FIELDS)
    bits = list(fastseg.ANALYSIS_FLAGS.values())
    assert len(set(bits)) == len(bits) and all(b & (b - 1) == 0 for b in bits)


def test_unassigned_segments_and_empty_input():
    seg = fastseg.read_segments(str(DATA / "lo_conv.pcap"))
    conns = fastseg.track(seg)
    seg["conn"] = np.full(len(seg), -1, dtype=np.int64)
    per_conn = loss.analyze_segments(seg, conns)
    assert (seg["analysis"] == 0).all() and np.isnan(seg["ack_rtt"]).all()
    assert (per_conn["orig_retrans_pkts"] == 0).all()
    empty = seg[:0]
    assert loss.analyze_segments(empty, conns[:0])["ttfb"].shape == (0,)


# -- report, command line -----------------------------------------------------

def test_report_loss_section_from_the_captures(tshark):
    files = [str(DATA / "loss" / f"loss_{n}_client.pcap") for n in ("loss", "zerowin", "keepalive")]
    d = fastseg.analyze(files).to_dict()["loss"]
    assert list(d) == loss.LOSS_REPORT_KEYS
    theirs = [tshark_analysis(f) for f in files]
    retrans = sum(1 for t in theirs for v in t.values() if "retransmission" in v[0])
    packets = sum(len(t) for t in theirs)
    assert d["retrans_pkts"] == retrans and d["packets"] == packets
    assert d["retrans_rate"] == pytest.approx(retrans / packets)
    assert d["connections_with_retransmissions"] >= 1
    assert d["per_server"][0]["server"] == "10.88.0.2" and d["per_server"][0]["port"] == 5001
    zw = d["zero_window"]
    assert zw["connections"] == 1 and zw["by_resp"] == 1 and zw["by_orig"] == 0
    assert zw["segments"] == sum(1 for v in theirs[1].values() if "zero_window" in v[0])
    assert d["keepalive_only"] == 0          # the idle connection carried a line at the end
    # relay delays 5, 1 and 1 ms each way
    assert d["rtt"]["samples"] == 3 and 0.0019 < d["rtt"]["p50"] < 0.004
    assert 0.0099 < d["rtt"]["max"] < 0.02
    assert d["first_flight"]["orig"]["bytes"]["max"] == 14480


def test_keepalive_only_connection_is_a_half_open_suspect(tmp_path):
    body = [(1000 * k, "c", "A", 0, 1, 0, 64240) for k in range(1, 4)]
    body = [x for k, x in enumerate(body) for x in (x, (x[0] + 1, "s", "A", 1, 1, 0, 65160))]
    path = _write(tmp_path, HANDSHAKE + body)
    d = fastseg.analyze(str(path)).to_dict()["loss"]
    assert d["keepalive_only"] == 1


def test_cli_segments_analysis_columns(tshark, tmp_path):
    import json
    import subprocess
    import sys
    path = DATA / "loss" / "loss_reorder_server.pcap"
    out = subprocess.run([sys.executable, "-m", "fastseg", "segments", "--analysis", str(path)],
                         capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    theirs = tshark_analysis(str(path))
    assert all(set(filter(None, r["analysis"].split(","))) == set(theirs[r["frame"]][0])
               for r in rows)
    assert any(r["analysis"] for r in rows)
    assert all((r["ack_rtt"] is None) == math.isnan(theirs[r["frame"]][1]) for r in rows)
    csv_out = tmp_path / "s.csv"
    subprocess.run([sys.executable, "-m", "fastseg", "segments", "--analysis", str(path),
                    "-o", str(csv_out)], check=True)
    assert '"out_of_order' in csv_out.read_text() or ",out_of_order," in csv_out.read_text()
    plain = subprocess.run([sys.executable, "-m", "fastseg", "segments", str(path)],
                           capture_output=True, text=True, check=True).stdout
    assert "analysis" not in json.loads(plain.splitlines()[0])


def test_cli_conns_has_loss_columns(tmp_path):
    import json
    import subprocess
    import sys
    path = DATA / "loss" / "loss_zerowin_client.pcap"
    out = subprocess.run([sys.executable, "-m", "fastseg", "conns", str(path)],
                         capture_output=True, text=True, check=True).stdout
    row = json.loads(out.splitlines()[0])
    for name in loss.LOSS_COLUMNS:
        assert name in row
    assert row["resp_zero_windows"] > 0 and row["orig_rtt_min"] > 0


# -- the tracker's own pass ---------------------------------------------------

def _flip_and_self_capture(tmp_path):
    """A connection seen from its SYN-ACK on (the tracker turns it around
    mid-stream: history "^h"), one seen from the server's data first (turned
    around at once) and a self-connection (both ends one address and port)."""
    frames = []

    def add(ms, src, dst, flags, seq, ack, length, window=65000, options=b""):
        bits = sum({"S": 0x02, "A": 0x10, "F": 0x01, "R": 0x04, "P": 0x08}[ch] for ch in flags)
        seg = tcp(sport=src[1], dport=dst[1], seq=seq, ack=ack if "A" in flags else 0,
                  flags=bits, window=window, options=options, payload=b"d" * length)
        us = int(round(ms * 1000))
        frames.append((1_700_000_000 + us // 1_000_000, us % 1_000_000,
                       ipv4(src[0], dst[0], seg)))

    c, s = ("10.0.0.1", 40001), ("10.0.0.2", 443)
    add(0, s, c, "SA", 5000, 1001, 0, options=opt_mss(1460) + opt_sack_perm())
    add(1, c, s, "A", 1001, 5001, 0)
    add(2, c, s, "A", 1001, 5001, 100)
    add(3, s, c, "A", 5001, 1101, 300)
    add(4, c, s, "A", 1101, 5301, 0)
    add(5, c, s, "A", 1001, 5301, 100)                   # retransmission
    c2, s2 = ("10.0.0.3", 40002), ("10.0.0.4", 80)
    add(10, s2, c2, "A", 9000, 2000, 200)
    add(11, c2, s2, "A", 2000, 9200, 0)
    add(12, s2, c2, "A", 9200, 2000, 200)
    add(13, s2, c2, "A", 9200, 2000, 200)                # retransmission
    add(14, c2, s2, "A", 2000, 9400, 50)
    me = ("10.0.0.5", 5000)
    add(20, me, me, "SA", 700, 701, 0)                   # turned around at the next one
    add(21, me, me, "A", 701, 701, 10)
    add(22, me, me, "A", 711, 711, 0)
    add(23, me, me, "A", 701, 711, 10)                   # retransmission
    path = tmp_path / "flips.pcap"
    path.write_bytes(pcap(frames, linktype=101))
    return path


def _fused_and_separate(path, batch, **opts):
    """Per-segment and per-connection loss columns from the tracker's own
    pass, and from tracking without it followed by LossAnalyzer over the
    same tracked batches."""
    fused, plain = fastseg.Tracker(loss=True, **opts), fastseg.Tracker(loss=False, **opts)
    second = loss.LossAnalyzer()
    seg_a, seg_b, conn_a, conn_b, hist = [], [], [], [], []
    with fastseg.open(str(path), batch_packets=batch) as cap:
        for seg in cap.batches():
            conn_a.append(fused.update_columns(seg))
            seg_a.append({k: seg[k].copy() for k in loss.SEGMENT_LOSS_COLUMNS})
            assert "analysis" in seg
            k = plain.update_columns(seg)
            second.process(seg)
            k.update(second.finish(k))
            conn_b.append(k)
            seg_b.append({k: seg[k] for k in loss.SEGMENT_LOSS_COLUMNS})
    conn_a.append(fused.flush_columns())
    k = plain.flush_columns()
    k.update(second.finish(k))
    conn_b.append(k)
    hist = [h for k in conn_a for h in k["history"].tolist()]
    return seg_a, seg_b, conn_a, conn_b, hist


def test_the_tracker_analyses_in_its_own_pass_as_a_second_pass_would(tmp_path):
    """Per segment and per connection, whatever the batch split, the
    checksum mode, the memory budget and role flips: the same columns as
    LossAnalyzer run after tracking.  Segments with a bad checksum are
    analysed too, those whose options the snapshot length cut are not."""
    paths = _committed() + [_flip_and_self_capture(tmp_path)]
    flips = cut = dropped = 0
    for path in paths:
        seg = fastseg.read_segments(str(path))
        cut += int((seg["opt_status"] == fastseg._consts.OPTS_CUT).sum())
        for batch, opts in ((1 << 16, {}), (7, {"checksums": "verify"}),
                            (3, {"max_connections": 2, "checksums": "ignore"})):
            seg_a, seg_b, conn_a, conn_b, hist = _fused_and_separate(path, batch, **opts)
            flips += sum(b"^" in h for h in hist)
            for a, b in zip(seg_a, seg_b):
                for name in loss.SEGMENT_LOSS_COLUMNS:
                    assert a[name].dtype == b[name].dtype
                    np.testing.assert_array_equal(a[name], b[name], err_msg=f"{path.name} {name}")
            for a, b in zip(conn_a, conn_b):
                np.testing.assert_array_equal(a["_conn"], b["_conn"])
                for name in loss.LOSS_COLUMNS:
                    np.testing.assert_array_equal(a[name], b[name], err_msg=f"{path.name} {name}")
        t = fastseg.Tracker(checksums="verify")
        t.update(seg)
        dropped += int(t.verdict.dropped(seg).sum())
    # the inputs exercise what the comparison is about
    assert flips > 0 and cut > 0 and dropped > 0


def test_a_self_connection_is_one_side():
    """Both ends one address and port: every segment is the originator's,
    as endpoint keys tell them apart (they cannot)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        seg = fastseg.read_segments(str(_flip_and_self_capture(Path(d))))
    conns = fastseg.track(seg)
    row = conns[conns["orig_p"] == 5000]
    assert len(row) == 1 and row["resp_p"][0] == 5000 and row["history"][0].startswith("^")
    assert row["orig_retrans_pkts"][0] == 1 and row["orig_retrans_bytes"][0] == 10
    assert row["orig_first_flight_segs"][0] == 1 and row["orig_first_flight_bytes"][0] == 10
    for name in loss.LOSS_COLUMNS:
        if name.startswith("resp_") and not name.startswith("resp_rtt_"):
            assert row[name][0] == 0, name


def test_loss_off_does_no_loss_work():
    seg = fastseg.read_segments(str(DATA / "loss" / "loss_loss_client.pcap"))
    plain, fused = fastseg.Tracker(loss=False), fastseg.Tracker(loss=True)
    k = plain.update_columns(seg)
    assert not any(name in seg for name in loss.SEGMENT_LOSS_COLUMNS)
    assert not any(name in k for name in loss.LOSS_COLUMNS)
    assert not plain.loss and fused.loss
    fused.update_columns(seg)
    # the loss states sit beside the records only when asked for
    from fastseg import _track
    assert fused.memory_bytes() - plain.memory_bytes() >= _track.Engine.loss_state_size()
    conns = plain.flush()
    assert "orig_retrans_pkts" not in conns.columns


def test_flag_names_per_row_and_as_arrow_lists():
    """The names of every set bit, in ANALYSIS_FLAGS order, for every row;
    the Arrow form holds the same lists, and each row has its own list."""
    rng = np.random.default_rng(5)
    bits = np.array(list(fastseg.ANALYSIS_FLAGS.values()))
    analysis = np.where(rng.random(2000) < 0.5, 0,
                        rng.integers(0, 1 << len(bits), 2000)).astype(np.uint32)
    expected = [[name for name, bit in fastseg.ANALYSIS_FLAGS.items() if v & bit]
                for v in analysis.tolist()]
    names = loss.flag_names(analysis)
    assert names == expected
    names[0].append("x")
    assert all("x" not in n for n in names[1:])
    assert loss.flag_names_arrow(analysis).to_pylist() == expected
    assert loss.flag_names([]) == [] and loss.flag_names_arrow([]).to_pylist() == []


def test_a_flight_longer_than_the_ring(tmp_path, tshark):
    """600 segments in flight, more than the 512 unacknowledged segments an
    endpoint keeps (the ring moves to the heap, doubles, then merges its two
    oldest entries): bytes in flight stay exact, and ACKs that end at a
    segment that was not merged get their RTT, as in tshark (which keeps
    up to 10000)."""
    n, size = 600, 10
    body = [(30 + 0.01 * i, "c", "A", 1 + size * i, 1, size, 64240) for i in range(n)]
    body += [(50, "s", "A", 1, 1 + size * 201, 0, 65160),     # the end of segment 200
             (60, "s", "A", 1, 1 + size * n, 0, 65160)]       # everything
    path = _write(tmp_path, HANDSHAKE + body)
    seg, _, _ = _analyzed(path)
    theirs = tshark_analysis(str(path))
    bif = seg["bytes_in_flight"][3:3 + n].tolist()
    assert bif == [size * (i + 1) for i in range(n)]
    assert bif == [theirs[4 + i][2] for i in range(n)]
    rtt = seg["ack_rtt"]
    assert rtt[3 + n] == pytest.approx((50 - (30 + 0.01 * 200)) / 1000)
    assert rtt[3 + n + 1] == pytest.approx((60 - (30 + 0.01 * (n - 1))) / 1000)
    for k in (3 + n, 4 + n):
        assert abs(rtt[k] - theirs[k + 1][1]) < 1e-6
    assert not seg["analysis"].any()
