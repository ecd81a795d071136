"""fastseg.synth: every packet valid, every connection what the ground truth says.

Oracles: tshark (checksums, streams, initial RTT, option parsing, expert info),
a struct-based pcap/pcapng reader written here and the RFC 1071 checksum of refs.
"""
import collections
import csv
import hashlib
import json
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastseg
from fastseg import cli, synth
from refs import ones_sum

N_CONN = 3000
SEED = 7

FIELDS = [
    "frame.number", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst",
    "ipv6.dst", "tcp.dstport", "tcp.flags", "tcp.checksum.status", "ip.checksum.status",
    "tcp.analysis.initial_rtt", "_ws.malformed", "frame.time_epoch", "tcp.len",
    "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.sack_perm",
    "tcp.options.timestamp.tsval", "tcp.options.tfo.request", "tcp.options.tfo.cookie",
    "tcp.seq_raw", "tcp.ack_raw", "frame.protocols", "tcp.options.sack.count",
    "tcp.analysis.duplicate_ack", "tcp.analysis.retransmission", "tcp.analysis.keep_alive",
]


def run_tshark(tshark, path, fields=FIELDS):
    """One dict per frame.  Payloads are decoded as plain data so that port-based
    application dissectors (EtherCAT on 34980, HTTP on 443, ...) do not judge
    synthetic payloads: only Ethernet/IP/TCP validity is under test."""
    cmd = [tshark, "-r", str(path), "-n", "-o", "tcp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", "-d", "tcp.port==1-65535,data",
           "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    pcap, truth = d / "mixed.pcap", d / "mixed.csv"
    # A small block size forces several blocks, so the cross-block merge is exercised.
    res = synth.generate(pcap, N_CONN, seed=SEED, truth=truth,
                         bad_checksum_fraction=0.02, block_size=700)
    with open(truth, newline="") as f:
        rows = list(csv.DictReader(f))
    return res, rows


@pytest.fixture(scope="module")
def frames(capture, tshark):
    return run_tshark(tshark, capture[0].path)


@pytest.fixture(scope="module")
def streams(frames, capture):
    """Per tcp.stream: its frames (good-checksum ones separately) and its truth row."""
    by_tuple = {(t["client"], int(t["client_port"]), t["server"], int(t["server_port"])): t
                for t in capture[1]}
    out = collections.defaultdict(lambda: {"frames": [], "good": [], "bad": 0})
    for fr in frames:
        s = out[int(fr["tcp.stream"])]
        if "tuple" not in s:
            s["tuple"] = (fr["ip.src"] or fr["ipv6.src"], int(fr["tcp.srcport"]),
                          fr["ip.dst"] or fr["ipv6.dst"], int(fr["tcp.dstport"]))
            s["truth"] = by_tuple.get(s["tuple"])
        s["frames"].append(fr)
        if fr["tcp.checksum.status"] == "0":
            s["bad"] += 1
        else:
            s["good"].append(fr)
    return dict(out)


def flags(fr):
    return int(fr["tcp.flags"], 16)


def test_scenarios_lists_every_kind_with_a_description():
    kinds = synth.scenarios()
    assert set(kinds) == set(synth.KINDS) == set(synth.DEFAULT_MIX)
    for name in ("fin_orig", "fin_resp", "refused", "unanswered", "rst_orig", "rst_resp",
                 "close_wait", "half_open", "keepalive", "tfo_request", "tfo_data",
                 "retransmit", "reorder", "flood"):
        assert kinds[name]


def test_result_counts_match_file_and_truth(capture, frames):
    res, truth = capture
    assert res.packets == len(frames)
    assert len(truth) == res.connections == N_CONN
    assert sum(res.kinds.values()) == N_CONN
    assert sum(int(t["packets"]) for t in truth) == res.packets
    assert [int(t["conn"]) for t in truth] == list(range(N_CONN))


def test_every_frame_is_tcp_and_none_is_malformed(frames):
    assert all(fr["tcp.stream"] != "" for fr in frames)
    assert not [fr["frame.number"] for fr in frames if fr["_ws.malformed"]]
    assert all(fr["frame.protocols"].startswith("eth:ethertype:ip") for fr in frames)


def test_ipv4_header_checksums_are_all_good(frames):
    v4 = [fr for fr in frames if fr["ip.src"]]
    assert v4 and all(fr["ip.checksum.status"] == "1" for fr in v4)
    assert any(fr["ipv6.src"] for fr in frames)


def test_bad_tcp_checksums_are_exactly_the_truth_ones(frames, streams, capture):
    status = collections.Counter(fr["tcp.checksum.status"] for fr in frames)
    assert set(status) == {"0", "1"}           # bad and good, nothing unverified
    assert status["0"] == sum(int(t["bad_checksums"]) for t in capture[1]) > 0
    for s in streams.values():
        assert s["bad"] == int(s["truth"]["bad_checksums"])


def test_one_tcp_stream_per_truth_connection(streams, capture):
    assert len(streams) == N_CONN
    assert all(s["truth"] is not None for s in streams.values())
    assert len({s["truth"]["conn"] for s in streams.values()}) == N_CONN
    # tshark numbers streams by first packet: the truth's order (first SYN) is the same.
    assert [int(streams[i]["truth"]["conn"]) for i in range(N_CONN)] == list(range(N_CONN))


def test_initial_rtt_matches_truth_to_the_microsecond(streams):
    checked = 0
    for s in streams.values():
        t = s["truth"]
        irtt = [fr["tcp.analysis.initial_rtt"] for fr in s["frames"]
                if fr["tcp.analysis.initial_rtt"]]
        if t["handshake_completed"] == "1":
            assert irtt, t
            assert abs(Decimal(irtt[0]) - Decimal(t["handshake_rtt"])) < Decimal("0.0000005")
            checked += 1
        elif t["kind"] == "refused":
            # Wireshark also fills initial_rtt from the RST,ACK that refuses a SYN;
            # the truth's handshake RTT stays empty (the handshake never completed).
            assert t["handshake_rtt"] == ""
        else:
            assert t["handshake_rtt"] == "" and not irtt, t["kind"]
    assert checked > N_CONN // 2


def test_syn_synack_fin_rst_counts_match_truth(streams):
    for s in streams.values():
        t, good = s["truth"], s["good"]
        assert sum(flags(f) & 0x12 == 0x02 for f in good) == int(t["syn_count"])
        assert sum(flags(f) & 0x12 == 0x12 for f in good) == int(t["synack_count"])
        assert sum(bool(flags(f) & 0x01) for f in good) == int(t["fin_count"])
        assert sum(bool(flags(f) & 0x04) for f in good) == int(t["rst_count"])
        assert len(s["frames"]) == int(t["packets"])


def test_closer_and_close_kind_match_first_fin_or_rst(streams):
    for s in streams.values():
        t = s["truth"]
        closing = [f for f in s["good"] if flags(f) & 0x05]
        if not closing:
            assert (t["closer"], t["close"]) == ("none", "none")
            continue
        first = closing[0]
        from_client = (first["ip.src"] or first["ipv6.src"]) == t["client"]
        assert t["closer"] == ("orig" if from_client else "resp")
        assert t["close"] == ("rst" if flags(first) & 0x04 else "fin")


def test_per_direction_packets_duration_and_handshake_split_match_frames(streams):
    for s in streams.values():
        t = s["truth"]
        src = [(f["ip.src"] or f["ipv6.src"]) for f in s["frames"]]
        assert src.count(t["client"]) == int(t["orig_pkts"])
        assert src.count(t["server"]) == int(t["resp_pkts"])
        ts = [Decimal(f["frame.time_epoch"]) for f in s["frames"]]
        assert max(ts) - ts[0] == Decimal(t["duration"])
        assert ts[0] == Decimal(t["syn_ts"])
        synacks = [Decimal(f["frame.time_epoch"]) for f in s["good"] if flags(f) & 0x12 == 0x12]
        if synacks:
            assert synacks[0] - ts[0] == Decimal(t["syn_synack"])
        else:
            assert t["syn_synack"] == ""
        if t["handshake_completed"] == "1":
            assert Decimal(t["syn_synack"]) + Decimal(t["synack_ack"]) == \
                Decimal(t["handshake_rtt"])
        else:
            assert t["synack_ack"] == ""


def test_packets_are_in_global_time_order(frames):
    ts = [Decimal(fr["frame.time_epoch"]) for fr in frames]
    assert all(a <= b for a, b in zip(ts, ts[1:]))


def test_conn_state_follows_the_scenario(streams):
    expected = {"fin_orig": {"SF"}, "fin_resp": {"SF"}, "refused": {"REJ"},
                "unanswered": {"S0"}, "rst_orig": {"RSTO"}, "rst_resp": {"RSTR"},
                "close_wait": {"S2"}, "half_open": {"S1"}, "keepalive": {"SF"},
                "tfo_request": {"SF"}, "tfo_data": {"SF"}, "retransmit": {"SF"},
                "reorder": {"SF"}, "flood": {"S0", "S1"}}
    seen = set()
    for s in streams.values():
        t = s["truth"]
        seen.add(t["kind"])
        assert t["conn_state"] in expected[t["kind"]]
        server_fins = [f for f in s["good"] if flags(f) & 1
                       and (f["ip.src"] or f["ipv6.src"]) == t["server"]]
        if t["kind"] == "close_wait":
            assert not server_fins and t["closer"] == "orig"
        if t["kind"] == "fin_resp":
            assert t["closer"] == "resp"
        if t["kind"] == "refused":
            assert [flags(f) for f in s["good"]][1] == 0x14   # RST,ACK
    assert seen == set(synth.KINDS)


def test_unanswered_syns_back_off_one_two_four_seconds(streams):
    checked = 0
    for s in streams.values():
        if s["truth"]["kind"] != "unanswered":
            continue
        ts = [Decimal(f["frame.time_epoch"]) for f in s["good"]]
        assert all(flags(f) & 0x12 == 0x02 for f in s["good"])
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        for i, g in enumerate(gaps):
            assert abs(g - (1 << i)) < Decimal("0.005")
        checked += len(gaps) > 1
    assert checked


def test_flood_syns_hit_one_server_port_per_burst_and_are_never_acked(streams):
    flood = [s for s in streams.values() if s["truth"]["kind"] == "flood"]
    assert len(flood) > 50
    targets = collections.Counter((s["truth"]["server"], s["truth"]["server_port"])
                                  for s in flood)
    assert len(targets) <= 2
    sources = {s["truth"]["client"] for s in flood}
    assert len(sources) > len(flood) // 2              # spoofed: mostly distinct
    resent = 0
    for s in flood:
        fl = [flags(f) for f in s["good"]]
        assert fl[0] == 0x02 and set(fl[1:]) <= {0x12}
        assert s["truth"]["handshake_completed"] == "0"
        assert s["truth"]["conn_state"] == ("S1" if len(fl) > 1 else "S0")
        # Resent SYN-ACKs (no syncookies) follow Linux's 1 s, 2 s, 4 s ... backoff.
        ts = [Decimal(f["frame.time_epoch"]) for f in s["good"]][1:]
        assert [b - a for a, b in zip(ts, ts[1:])] == [1 << i for i in range(len(ts) - 1)]
        resent += len(ts) > 1
    assert resent


def test_tfo_cookie_request_and_data_in_syn(streams):
    kinds = collections.Counter()
    for s in streams.values():
        t = s["truth"]
        syn = s["good"][0]
        if t["kind"] == "tfo_request":
            assert syn["tcp.options.tfo.request"] and t["tfo"] == "cookie_request"
            assert s["good"][1]["tcp.options.tfo.cookie"]      # the SYN-ACK gives one
            kinds["req"] += 1
        elif t["kind"] == "tfo_data":
            assert syn["tcp.options.tfo.cookie"] and t["tfo"] == "cookie_data"
            assert int(syn["tcp.len"]) == int(t["tfo_data"]) > 0
            kinds["data"] += 1
        else:
            assert not syn["tcp.options.tfo.request"] and not syn["tcp.options.tfo.cookie"]
            assert int(t["tfo_data"]) == 0
    assert kinds["req"] and kinds["data"]


def test_syn_options_match_truth(streams):
    mss_values, ws_values = set(), set()
    for s in streams.values():
        t, syn = s["truth"], s["good"][0]
        assert (syn["tcp.options.mss_val"] or "-1") == t["mss"]
        assert (syn["tcp.options.wscale.shift"] or "-1") == t["wscale"]
        assert bool(syn["tcp.options.sack_perm"]) == (t["sack"] == "1")
        assert bool(syn["tcp.options.timestamp.tsval"]) == (t["ts"] == "1")
        assert bool(flags(syn) & 0xC0 == 0xC0) == (t["ecn"] == "1")
        assert int(syn["tcp.seq_raw"]) == int(t["orig_isn"])
        mss_values.add(t["mss"])
        ws_values.add(t["wscale"])
    assert {"1460", "1440", "1380", "8960"} <= mss_values
    assert "-1" in ws_values and len(ws_values) > 8


def test_payload_bytes_match_truth(streams):
    for s in streams.values():
        t = s["truth"]
        if t["kind"] not in ("fin_orig", "fin_resp", "tfo_data", "rst_orig", "close_wait"):
            continue
        cli = sum(int(f["tcp.len"]) for f in s["good"]
                  if (f["ip.src"] or f["ipv6.src"]) == t["client"])
        srv = sum(int(f["tcp.len"]) for f in s["good"]
                  if (f["ip.src"] or f["ipv6.src"]) == t["server"])
        assert (cli, srv) == (int(t["orig_bytes"]), int(t["resp_bytes"]))


def test_same_seed_gives_identical_bytes_other_seed_does_not(tmp_path):
    digests = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        p = tmp_path / f"{name}.pcap"
        synth.generate(p, 500, seed=seed, truth=tmp_path / f"{name}.csv",
                       bad_checksum_fraction=0.01)
        digests.append((hashlib.sha256(p.read_bytes()).hexdigest(),
                        hashlib.sha256((tmp_path / f"{name}.csv").read_bytes()).hexdigest()))
    assert digests[0] == digests[1]
    assert digests[0][0] != digests[2][0] and digests[0][1] != digests[2][1]


# --- independent readers and checksum -------------------------------------------

def read_pcap(path):
    b = Path(path).read_bytes()
    magic, = struct.unpack_from("<I", b, 0)
    nano = magic == 0xa1b23c4d
    assert magic in (0xa1b2c3d4, 0xa1b23c4d)
    assert struct.unpack_from("<HH", b, 4) == (2, 4)
    pos, out = 24, []
    while pos < len(b):
        sec, frac, cap, orig = struct.unpack_from("<IIII", b, pos)
        out.append((sec * 10**9 + frac * (1 if nano else 1000), b[pos + 16:pos + 16 + cap], orig))
        pos += 16 + cap
    assert pos == len(b)
    return out


def read_pcapng(path):
    b = Path(path).read_bytes()
    pos, out, resol = 0, [], 10**3
    while pos < len(b):
        btype, blen = struct.unpack_from("<II", b, pos)
        assert blen % 4 == 0 and struct.unpack_from("<I", b, pos + blen - 4)[0] == blen
        if btype == 1:
            opt = pos + 16
            while opt < pos + blen - 4:
                code, olen = struct.unpack_from("<HH", b, opt)
                if code == 9:
                    resol = 10 ** (9 - b[opt + 4])
                if code == 0:
                    break
                opt += 4 + (olen + 3) // 4 * 4
        elif btype == 6:
            _, hi, lo, cap, orig = struct.unpack_from("<IIIII", b, pos + 8)
            out.append((((hi << 32) | lo) * resol, b[pos + 28:pos + 28 + cap], orig))
        pos += blen
    assert pos == len(b)
    return out


def tcp_checksum_ok(frame):
    eth_type = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if eth_type == 0x0800:
        ihl = (ip[0] & 0xf) * 4
        assert ones_sum(ip[:ihl]) == 0xffff                # IPv4 header checksum
        total = struct.unpack_from("!H", ip, 2)[0]
        seg = ip[ihl:total]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(seg))
    else:
        assert eth_type == 0x86dd and ip[6] == 6
        seg = ip[40:40 + struct.unpack_from("!H", ip, 4)[0]]
        pseudo = ip[8:40] + struct.pack("!IxxxB", len(seg), 6)
    return ones_sum(pseudo + seg) == 0xffff


def test_in_memory_packets_equal_the_file_and_checksums_verify(tmp_path):
    kw = dict(seed=5, bad_checksum_fraction=0.03, block_size=300)
    p = tmp_path / "x.pcap"
    synth.generate(p, 1200, **kw)
    recs = read_pcap(p)
    mem = synth.packets(1200, nanosecond=False, **kw)
    assert len(mem) == len(recs)
    assert mem.ts_ns.tolist() == [r[0] for r in recs]
    assert mem.lens.tolist() == [r[2] for r in recs]
    data = mem.data.tobytes()
    for i, (_, frame, _) in enumerate(recs):
        o = mem.offsets[i]
        assert data[o:o + mem.caplens[i]] == frame
    bad = sum(not tcp_checksum_ok(frame) for _, frame, _ in recs)
    assert bad == int(mem.truth["bad_checksums"].sum()) > 0


def test_pcapng_nanosecond_matches_pcap_nanosecond_and_tshark(tmp_path, tshark):
    a, b = tmp_path / "a.pcapng", tmp_path / "a.pcap"
    synth.generate(a, 400, seed=2, format="pcapng", nanosecond=True)
    synth.generate(b, 400, seed=2, format="pcap", nanosecond=True)
    ng, pc = read_pcapng(a), read_pcap(b)
    assert ng == pc
    assert any(t % 1000 for t, _, _ in ng)                 # real sub-microsecond times
    rows = run_tshark(tshark, a, ["frame.time_epoch", "tcp.checksum.status", "_ws.malformed"])
    assert len(rows) == len(ng)
    assert [int(Decimal(r["frame.time_epoch"]) * 10**9) for r in rows] == [t for t, _, _ in ng]
    assert all(r["tcp.checksum.status"] == "1" and not r["_ws.malformed"] for r in rows)


def test_pcapng_microsecond_reads_back(tmp_path):
    a = tmp_path / "u.pcapng"
    res = synth.generate(a, 300, seed=4, format="pcapng")
    recs = read_pcapng(a)
    assert len(recs) == res.packets and all(t % 1000 == 0 for t, _, _ in recs)
    assert all(tcp_checksum_ok(f) for _, f, _ in recs)


def test_snaplen_truncates_captured_bytes_but_keeps_wire_length(tmp_path):
    p = tmp_path / "s.pcap"
    synth.generate(p, 200, seed=1, snaplen=96)
    b = p.read_bytes()
    assert struct.unpack_from("<I", b, 16)[0] == 96
    recs = read_pcap(p)
    assert all(len(f) == min(96, orig) for _, f, orig in recs)
    assert any(orig > 96 for _, _, orig in recs)


def test_truth_jsonl_has_the_same_rows_as_csv(tmp_path):
    synth.generate(tmp_path / "j.pcap", 300, seed=9, truth=tmp_path / "t.jsonl")
    synth.generate(tmp_path / "c.pcap", 300, seed=9, truth=tmp_path / "t.csv")
    js = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    with open(tmp_path / "t.csv", newline="") as f:
        cs = list(csv.DictReader(f))
    assert len(js) == len(cs) == 300
    assert list(js[0]) == list(synth.TRUTH_COLUMNS)
    for j, c in zip(js, cs):
        for k in synth.TRUTH_COLUMNS:
            jv = j[k]
            if jv is None:
                assert c[k] == ""
            elif isinstance(jv, bool):
                assert c[k] == str(int(jv))
            else:
                assert str(jv) == c[k] or Decimal(str(jv)) == Decimal(c[k])


def test_mix_selects_kinds_and_rejects_unknown_ones(tmp_path):
    res = synth.generate(tmp_path / "m.pcap", 300, mix="refused=1,unanswered=1")
    assert set(res.kinds) == {"refused", "unanswered"}
    res = synth.generate(tmp_path / "m.pcap", 100, mix={"flood": 1})
    assert res.kinds == {"flood": 100}
    with pytest.raises(ValueError, match="unknown scenario"):
        synth.generate(tmp_path / "m.pcap", 10, mix="nosuchkind=1")
    with pytest.raises(ValueError):
        synth.generate(tmp_path / "m.pcap", 10, format="erf")


def test_ipv6_fraction_controls_address_family():
    all4 = synth.packets(200, ipv6_fraction=0.0, mix="fin_orig=1").truth["ip_version"]
    all6 = synth.packets(200, ipv6_fraction=1.0, mix="fin_orig=1").truth["ip_version"]
    assert set(all4.tolist()) == {4} and set(all6.tolist()) == {6}


def test_zero_connections_is_an_empty_valid_capture(tmp_path):
    p = tmp_path / "z.pcap"
    res = synth.generate(p, 0, truth=tmp_path / "z.csv")
    assert res.packets == 0 and read_pcap(p) == []
    assert (tmp_path / "z.csv").read_text().strip() == ",".join(synth.TRUTH_COLUMNS)


def test_command_line_options_drive_generate(tmp_path):
    parser = cli.build_parser()
    out = tmp_path / "cli.pcapng"
    args = parser.parse_args(["synth", "-o", str(out), "--connections", "150", "--seed", "3",
                              "--nanosecond", "--truth", str(tmp_path / "cli.csv"),
                              "--mix", "fin_orig=3,flood=1"])
    res = cli.run_synth(args)
    assert res.connections == 150 and set(res.kinds) == {"fin_orig", "flood"}
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"     # pcapng from the name
    assert len(read_pcapng(out)) == res.packets


def test_demo_capture_has_every_kind_and_some_damaged_checksums(tmp_path):
    res = synth.demo(tmp_path / "demo.pcap", 4000, truth=tmp_path / "demo.csv")
    assert set(res.kinds) == set(synth.KINDS)
    with open(tmp_path / "demo.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["bad_checksums"]) for r in rows) > 0
    assert res.summary().startswith(f"wrote {res.path}: {res.packets} packets")


def test_bad_arguments_raise_value_error(tmp_path):
    for kw in ({"seed": -1}, {"ipv6_fraction": 1.5}, {"bad_checksum_fraction": -0.1},
               {"block_size": 0}, {"snaplen": 10}):
        with pytest.raises(ValueError):
            synth.generate(tmp_path / "bad.pcap", 10, **kw)


def test_lost_segment_gives_duplicate_ack_with_sack_then_retransmission(streams):
    checked = 0
    for s in streams.values():
        t = s["truth"]
        if t["kind"] != "retransmit" or t["bad_checksums"] != "0":
            continue         # a damaged copy would make its good twin a dup ACK too
        dup = [f for f in s["good"] if f["tcp.analysis.duplicate_ack"]]
        assert len(dup) == 1
        assert bool(dup[0]["tcp.options.sack.count"]) == (t["sack"] == "1")
        seqs = [int(f["tcp.seq_raw"]) for f in s["good"]
                if (f["ip.src"] or f["ipv6.src"]) == t["server"] and int(f["tcp.len"])]
        assert len(seqs) == 4 and seqs[3] == seqs[1]         # the lost one, resent
        checked += 1
    assert checked


@settings(max_examples=15, deadline=None)
@given(connections=st.integers(0, 250), seed=st.integers(0, 2**32),
       kinds=st.sets(st.sampled_from(synth.KINDS), min_size=1),
       ipv6_fraction=st.sampled_from([0.0, 0.3, 1.0]), nanosecond=st.booleans(),
       bad=st.sampled_from([0.0, 0.05]), block_size=st.integers(1, 300))
def test_any_arguments_give_valid_ordered_packets_that_match_truth(
        connections, seed, kinds, ipv6_fraction, nanosecond, bad, block_size):
    mem = synth.packets(connections, seed=seed, mix={k: 1 for k in kinds},
                        ipv6_fraction=ipv6_fraction, nanosecond=nanosecond,
                        bad_checksum_fraction=bad, block_size=block_size)
    truth = mem.truth
    assert len(truth["conn"]) == connections
    assert len(mem) == int(truth["packets"].sum())
    assert np.all(np.diff(mem.ts_ns) >= 0)
    if not nanosecond:
        assert np.all(mem.ts_ns % 1000 == 0)
    data = mem.data.tobytes()
    n_bad = 0
    per_tuple = collections.Counter()
    for o, cap in zip(mem.offsets.tolist(), mem.caplens.tolist()):
        frame = data[o:o + cap]
        n_bad += not tcp_checksum_ok(frame)
        v4 = frame[12:14] == b"\x08\x00"
        ip = frame[14:]
        src, dst = (ip[12:16], ip[16:20]) if v4 else (ip[8:24], ip[24:40])
        sport, dport = struct.unpack_from("!HH", ip, 20 if v4 else 40)
        per_tuple[frozenset([(src, sport), (dst, dport)])] += 1
    assert n_bad == int(truth["bad_checksums"].sum())
    assert sorted(per_tuple.values()) == sorted(truth["packets"].tolist())
    assert set(truth["kind"].tolist()) <= kinds


def test_retransmissions_and_keepalives_match_wireshark(streams):
    totals = collections.Counter()
    for s in streams.values():
        t = s["truth"]
        if t["bad_checksums"] != "0":
            continue          # Wireshark calls a damaged copy's good twin a retransmission
        retx = sum(bool(f["tcp.analysis.retransmission"]) for f in s["good"]
                   if not flags(f) & 0x02)
        ka = sum(bool(f["tcp.analysis.keep_alive"]) for f in s["good"])
        assert (retx, ka) == (int(t["retransmits"]), int(t["keepalives"])), t["kind"]
        totals["retx"] += retx
        totals["ka"] += ka
    assert totals["retx"] and totals["ka"]


def test_compressed_outputs_hold_the_same_capture(tmp_path):
    import gzip
    plain = tmp_path / "p.pcapng"
    synth.generate(plain, 200, seed=8, format="pcapng")
    gz = tmp_path / "p.pcapng.gz"
    args = cli.build_parser().parse_args(["synth", "-o", str(gz), "-n", "200", "--seed", "8"])
    cli.run_synth(args)                          # format taken from the inner name
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()
    zstandard = pytest.importorskip("zstandard")
    zst = tmp_path / "p.pcapng.zst"
    synth.generate(zst, 200, seed=8, format="pcapng")
    assert zstandard.ZstdDecompressor().stream_reader(zst.read_bytes()).read() == \
        plain.read_bytes()


@pytest.mark.parametrize("link,linktype,proto", [("vlan", 1, "eth:ethertype:vlan:ethertype:ip"),
                                                 ("raw", 101, "raw:ip"),
                                                 ("sll", 113, "sll:ethertype:ip")])
def test_other_link_layers_carry_the_same_tcp(tmp_path, tshark, link, linktype, proto):
    p = tmp_path / f"{link}.pcap"
    res = synth.generate(p, 150, seed=6, link=link, ipv6_fraction=0.0)
    assert struct.unpack_from("<I", p.read_bytes(), 20)[0] == linktype
    rows = run_tshark(tshark, p, ["frame.protocols", "tcp.checksum.status", "_ws.malformed",
                                  "tcp.stream"])
    assert len(rows) == res.packets
    assert all(r["frame.protocols"].startswith(proto) for r in rows)
    assert all(r["tcp.checksum.status"] == "1" and not r["_ws.malformed"] for r in rows)
    assert len({r["tcp.stream"] for r in rows}) == 150
    mem = synth.packets(150, seed=6, link=link, ipv6_fraction=0.0, nanosecond=False)
    assert mem.linktype == linktype
    assert mem.data.tobytes() == b"".join(f for _, f, _ in read_pcap(p))


def test_every_truth_row_is_what_the_tracker_reports():
    """Each truth row (one Wireshark tcp.stream) is exactly ``zeek_conns`` rows of
    fastseg.track: the same 4-tuple, conn_state, first SYN time, and the same
    SYNs, packets (damaged copies never reach the state machine) and payload
    bytes summed over them."""
    mem = synth.packets(N_CONN, seed=SEED, bad_checksum_fraction=0.02, block_size=700,
                        nanosecond=False)
    seg = fastseg.parse_packets(data=mem.data, offset=mem.offsets, caplen=mem.caplens,
                                wirelen=mem.lens, ts_ns=mem.ts_ns, linktype=mem.linktype)
    conns = fastseg.track(seg)
    truth = mem.truth
    assert len(conns) == int(truth["zeek_conns"].sum())
    by_tuple = collections.defaultdict(list)
    keys = zip(conns.orig_text(), conns["orig_p"].tolist(),
               conns.resp_text(), conns["resp_p"].tolist())
    for i, key in enumerate(keys):
        by_tuple[key].append(i)
    summed = {"syn_count": "syn_count", "synack_count": "synack_count",
              "orig_pkts": "zeek_orig_pkts", "resp_pkts": "zeek_resp_pkts",
              "orig_bytes": "orig_bytes", "resp_bytes": "resp_bytes"}
    split = 0
    for r in range(len(truth["conn"])):
        key = (truth["client"][r], int(truth["client_port"][r]),
               truth["server"][r], int(truth["server_port"][r]))
        rows = by_tuple.pop(key)
        assert len(rows) == truth["zeek_conns"][r], key
        assert set(conns["conn_state"][rows].tolist()) == {truth["conn_state"][r]}, key
        assert round(float(conns["ts"][rows[0]]) * 1e6) == truth["syn_ts"][r] // 1000
        for name, column in summed.items():
            assert int(conns[name][rows].sum()) == int(truth[column][r]), (name, key)
        split += len(rows) > 1
    assert not by_tuple
    assert split and (truth["kind"][truth["zeek_conns"] > 1] == "unanswered").all()
