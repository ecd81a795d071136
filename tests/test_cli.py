"""The command line: exit codes, one-line errors, atomic outputs, JSON keys."""
import json
import os
import struct
import subprocess
import sys

import pytest

import refs
from fastseg import cli


def _pcap(path, packets, linktype=1):
    """Ethernet pcap, packet i at 1700000000 + i seconds."""
    refs.write_capture(path, packets, [(1700000000 + i) * 10**9 for i in range(len(packets))],
                       snaplen=65535, linktype=linktype)


def _tcp_packet(src, dst, sport, dport, seq, ack, flags, payload=b""):
    segment = refs.tcp(sport, dport, seq, ack, flags, payload=payload)
    ip = refs.ipv4(bytes(src), bytes(dst), segment, ident=1, df=False)
    return refs.ether(ip, src=bytes(6), dst=bytes(6), pad=False)


@pytest.fixture
def small_pcap(tmp_path):
    c, s = [10, 0, 0, 1], [10, 0, 0, 2]
    pkts = [
        _tcp_packet(c, s, 40000, 80, 100, 0, 0x02),
        _tcp_packet(s, c, 80, 40000, 500, 101, 0x12),
        _tcp_packet(c, s, 40000, 80, 101, 501, 0x10),
        _tcp_packet(c, s, 40000, 80, 101, 501, 0x18, b"GET /\r\n"),
        _tcp_packet(c, s, 40000, 80, 108, 501, 0x11),
        _tcp_packet(s, c, 80, 40000, 501, 109, 0x11),
        _tcp_packet(c, s, 40000, 80, 109, 502, 0x10),
    ]
    path = tmp_path / "small.pcap"
    _pcap(path, pkts)
    return path


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastseg", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def _one_line_error(proc, needle):
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in lines[0], lines[0]


def test_missing_file_is_one_line_exit_2(tmp_path):
    _one_line_error(run("summary", tmp_path / "nope.pcap"), "nope.pcap")


def test_directory_is_one_line_exit_2(tmp_path):
    _one_line_error(run("summary", tmp_path), "is a directory")


def test_empty_file_is_one_line_exit_2(tmp_path):
    p = tmp_path / "empty.pcap"
    p.write_bytes(b"")
    _one_line_error(run("summary", p), "empty.pcap")


def test_wrong_magic_names_file_and_offset(tmp_path):
    p = tmp_path / "junk.pcap"
    p.write_bytes(b"this is not a capture file at all" * 4)
    proc = run("segments", p)
    _one_line_error(proc, "junk.pcap")
    assert "offset 0" in proc.stderr


def test_truncated_header_is_one_line_exit_2(tmp_path):
    p = tmp_path / "short.pcap"
    p.write_bytes(struct.pack("<IHH", 0xA1B2C3D4, 2, 4))
    _one_line_error(run("summary", p), "short.pcap")


def test_usage_error_is_one_line_exit_2():
    _one_line_error(run("segments", "--format", "xml", "x.pcap"), "invalid choice")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: permission denial cannot be shown")
def test_unreadable_file_is_one_line_exit_2(small_pcap):
    os.chmod(small_pcap, 0)
    _one_line_error(run("summary", small_pcap), "permission denied")


def test_output_in_missing_directory_is_one_line_exit_2(small_pcap, tmp_path):
    _one_line_error(run("segments", small_pcap, "-o", tmp_path / "no" / "out.jsonl"), "does not exist")


def test_disk_full_leaves_no_output(small_pcap, tmp_path):
    proc = run("segments", small_pcap, "-o", "/dev/full")
    _one_line_error(proc, "No space left")


def test_failed_write_leaves_no_partial_file(small_pcap, tmp_path, monkeypatch):
    """A writer that fails midway: the target never appears, nor a temp file."""
    from fastseg import output

    target = tmp_path / "out.jsonl"

    class Boom(Exception):
        pass

    def failing_write(self, table):
        self.fh.write("partial line")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.TableWriter, "write", failing_write)
    rc = cli.main(["segments", str(small_pcap), "-o", str(target)])
    assert rc == 2
    assert list(tmp_path.iterdir()) == [small_pcap]


def test_segments_jsonl_rows_and_text_addresses(small_pcap):
    proc = run("segments", small_pcap)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 7
    assert rows[0]["src"] == "10.0.0.1" and rows[0]["dst"] == "10.0.0.2"
    assert rows[0]["frame"] == 1 and rows[0]["flags"] == 0x02 and rows[0]["seq"] == 100
    assert rows[3]["payload_len"] == 7
    assert rows[0]["mss"] is None          # absent option -> null
    assert all(r["checksum_status"] == "ok" for r in rows)


def test_segments_csv_and_parquet_agree(small_pcap, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    csv_out, pq_out = tmp_path / "s.csv", tmp_path / "s.parquet"
    assert run("segments", small_pcap, "-o", csv_out, "--format", "csv").returncode == 0
    assert run("segments", small_pcap, "-o", pq_out, "--format", "parquet").returncode == 0
    lines = csv_out.read_text().splitlines()
    header = lines[0].split(",")
    table = pq.read_table(pq_out)
    assert table.num_rows == len(lines) - 1 == 7
    assert header == table.column_names
    assert table.column("src").to_pylist()[1] == "10.0.0.2"
    assert [int(x.split(",")[header.index("seq")]) for x in lines[1:]] == \
        table.column("seq").to_pylist()


def test_summary_json_has_the_contract_keys(small_pcap):
    proc = run("summary", small_pcap, "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    for key in ("packets", "tcp", "non_tcp", "malformed", "malformed_by_reason"):
        assert key in d["capture"]
    assert d["capture"]["packets"] == 7 and d["capture"]["tcp"] == 7
    assert set(d["checksums"]) >= {"ok", "bad", "unverified", "offload"}
    assert d["checksums"]["ok"] == 7
    assert set(d["connections"]) >= {"total", "by_state"}
    assert set(d["handshakes"]) >= {"completed", "refused", "unanswered", "syn_retransmits", "rtt"}
    assert set(d["handshakes"]["rtt"]) >= {"p50", "p90", "p99", "max"}
    assert set(d["teardowns"]) >= {"fin", "rst", "by_orig", "by_resp", "close_wait_leaks",
                                   "half_open", "time_wait"}
    assert isinstance(d["syn_flood"], list)
    assert set(d["tfo"]) >= {"syn_with_data", "cookie_requests"}
    assert "options" in d
    assert d["connections"]["total"] == 1
    assert d["connections"]["by_state"] == {"SF": 1}
    assert d["handshakes"]["completed"] == 1
    assert d["teardowns"]["fin"] == 1 and d["teardowns"]["by_orig"] == 1
    assert d["teardowns"]["time_wait"]["held_by_orig"] == 1


def test_summary_text_mentions_the_totals(small_pcap):
    proc = run("summary", small_pcap)
    assert proc.returncode == 0, proc.stderr
    assert "tcp segments" in proc.stdout and "SF" in proc.stdout


def test_conns_zeek_format_is_readable_by_zeek_cut_rules(small_pcap):
    proc = run("conns", small_pcap, "--format", "zeek")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    fields = next(l for l in lines if l.startswith("#fields")).split("\t")[1:]
    rows = [l.split("\t") for l in lines if not l.startswith("#")]
    assert len(rows) == 1 and len(rows[0]) == len(fields)
    row = dict(zip(fields, rows[0]))
    assert row["id.orig_h"] == "10.0.0.1" and row["id.resp_p"] == "80"
    assert row["conn_state"] == "SF" and row["proto"] == "tcp"


def test_progress_reaches_100_percent_on_stderr(small_pcap, capsys):
    from fastseg import analyze
    analyze(str(small_pcap), progress=True)
    err = capsys.readouterr().err
    assert "100%" in err and str(small_pcap) in err


def test_no_progress_when_stderr_is_not_a_tty(small_pcap):
    proc = run("summary", small_pcap)
    assert proc.returncode == 0 and proc.stderr == ""


# -- link types that are not decoded ----------------------------------------
@pytest.fixture
def mixed_link_types(tmp_path, small_pcap):
    """A pcapng with an Ethernet interface (the 7 TCP packets of small_pcap),
    a radiotap interface (3 frames) and a USB interface (2 frames)."""
    import capfiles as cf

    eth = small_pcap.read_bytes()[24:]
    pkts, pos = [], 0
    while pos < len(eth):
        n = struct.unpack_from("<I", eth, pos + 8)[0]
        pkts.append(eth[pos + 16:pos + 16 + n])
        pos += 16 + n
    data = cf.shb() + cf.idb(1) + cf.idb(127) + cf.idb(189)
    for i, p in enumerate(pkts):
        data += cf.epb(0, 1_700_000_000_000_000 + i, p)
        if i < 3:
            data += cf.epb(1, 1_700_000_000_000_000 + i, b"\x00\x00\x08\x00\x00\x00\x00\x00" + p)
        if i < 2:
            data += cf.epb(2, 1_700_000_000_000_000 + i, bytes(48))
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(data)
    return path


NOT_DECODED = ["fastseg: 3 packets of link type 127 (IEEE802_11_RADIOTAP) not decoded",
               "fastseg: 2 packets of link type 189 (USB_LINUX) not decoded"]


def test_link_types_not_decoded_are_named_on_stderr_and_in_the_report(mixed_link_types):
    proc = run("summary", mixed_link_types, "--json")
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == NOT_DECODED
    cap = json.loads(proc.stdout)["capture"]
    assert cap["link_types_not_decoded"] == [
        {"link_type": 127, "name": "IEEE802_11_RADIOTAP", "packets": 3},
        {"link_type": 189, "name": "USB_LINUX", "packets": 2}]
    assert cap["packets"] == 12 and cap["tcp"] == 7
    text = run("summary", mixed_link_types).stdout
    assert "3 packets of link type 127 (IEEE802_11_RADIOTAP) not decoded" in text


@pytest.mark.parametrize("command", ["show", "segments", "conns"])
def test_every_reading_command_names_the_link_types_it_skips(mixed_link_types, command):
    proc = run(command, mixed_link_types)
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == NOT_DECODED
    assert len(proc.stdout.splitlines()) == {"show": 7, "segments": 7, "conns": 1}[command]


def test_decoded_capture_says_nothing_about_link_types(small_pcap):
    proc = run("show", small_pcap)
    assert proc.returncode == 0 and proc.stderr == ""


# -- output format from -o's extension ----------------------------------------------
@pytest.mark.parametrize("command,name,fmt", [
    ("segments", "s.parquet", "parquet"), ("segments", "s.csv", "csv"),
    ("segments", "s.json", "jsonl"), ("segments", "s.jsonl", "jsonl"),
    ("conns", "c.parquet", "parquet"), ("conns", "c.log", "zeek"), ("conns", "c.tsv", "zeek"),
    ("conns", "c.csv", "csv"), ("segments", "noext", "jsonl"),
])
def test_output_format_follows_the_extension(small_pcap, tmp_path, command, name, fmt):
    out = tmp_path / name
    proc = run(command, small_pcap, "-o", out)
    assert proc.returncode == 0, proc.stderr
    rows = 7 if command == "segments" else 1
    if fmt == "parquet":
        pq = pytest.importorskip("pyarrow.parquet")
        assert pq.read_table(out).num_rows == rows
        return
    lines = out.read_text().splitlines()
    if fmt == "jsonl":
        key = "orig_p" if command == "conns" else "frame"
        assert [json.loads(l)[key] for l in lines] == \
            ([40000] if command == "conns" else list(range(1, 8)))
    elif fmt == "csv":
        assert lines[0].startswith("frame," if command == "segments" else "uid,")
        assert len(lines) == rows + 1
    else:
        assert lines[0] == "#separator \\x09" and any(l.startswith("#fields") for l in lines)


def test_format_and_extension_that_contradict_are_one_line_exit_2(small_pcap, tmp_path):
    proc = run("segments", small_pcap, "-o", tmp_path / "s.parquet", "--format", "csv")
    _one_line_error(proc, "--format csv contradicts the .parquet extension")
    assert not (tmp_path / "s.parquet").exists()
    _one_line_error(run("segments", small_pcap, "-o", tmp_path / "s.log"),
                    "the .log extension means zeek")
    _one_line_error(run("segments", small_pcap, "-o", tmp_path / "s.txt"),
                    "give --format")
    assert run("segments", small_pcap, "-o", tmp_path / "s.txt", "--format", "csv").returncode == 0
    assert (tmp_path / "s.txt").read_text().startswith("frame,")


# -- standard input and several files ---------------------------------------------------
def run_stdin(data: bytes, *args):
    return subprocess.run([sys.executable, "-m", "fastseg", *map(str, args)], input=data,
                          capture_output=True, timeout=300)


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd", "pcapng"])
def test_dash_reads_standard_input(small_pcap, tmp_path, compress):
    import gzip

    import capfiles as cf
    data = small_pcap.read_bytes()
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zstd":
        zstandard = pytest.importorskip("zstandard")
        data = zstandard.ZstdCompressor().compress(data)
    elif compress == "pcapng":
        ng = cf.shb() + cf.idb(1)
        pos = 24
        while pos < len(data):
            n = struct.unpack_from("<I", data, pos + 8)[0]
            ng += cf.epb(0, 1_700_000_000_000_000, data[pos + 16:pos + 16 + n])
            pos += 16 + n
        data = ng
    want = json.loads(run("summary", small_pcap, "--json").stdout)
    proc = run_stdin(data, "summary", "-", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["files"] == ["-"]
    for key in ("capture", "connections", "handshakes", "teardowns"):
        if compress == "pcapng":   # another timestamp: compare what does not depend on it
            assert got[key]["total" if key == "connections" else next(iter(got[key]))] == \
                want[key]["total" if key == "connections" else next(iter(want[key]))]
        else:
            assert got[key] == want[key]
    assert len(run_stdin(data, "show", "-").stdout.splitlines()) == 7
    assert len(run_stdin(data, "segments", "-").stdout.splitlines()) == 7
    assert len(run_stdin(data, "conns", "-").stdout.splitlines()) == 1


def test_standard_input_twice_is_one_line_exit_2(small_pcap):
    proc = run_stdin(small_pcap.read_bytes(), "summary", "-", "-")
    assert proc.returncode == 2 and b"standard input" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_empty_standard_input_is_one_line_exit_2():
    proc = run_stdin(b"", "show", "-")
    assert proc.returncode == 2 and proc.stderr.decode().startswith("fastseg: error: -")
    assert len(proc.stderr.splitlines()) == 1


def test_show_segments_and_conns_take_several_files(small_pcap, tmp_path):
    other = tmp_path / "other.pcap"
    c, s = [10, 0, 0, 3], [10, 0, 0, 4]
    refs.write_capture(other, [_tcp_packet(c, s, 41000, 443, 7, 0, 0x02),
                               _tcp_packet(s, c, 443, 41000, 0, 8, 0x14)],
                       [(1700000000 + i) * 10**9 for i in range(2)], snaplen=65535)
    one = run("show", small_pcap).stdout + run("show", other).stdout
    assert run("show", small_pcap, other).stdout == one and len(one.splitlines()) == 9
    rows = [json.loads(l) for l in run("segments", small_pcap, other).stdout.splitlines()]
    assert [r["frame"] for r in rows] == list(range(1, 8)) + [1, 2]
    conns = [json.loads(l) for l in run("conns", small_pcap, other).stdout.splitlines()]
    assert [(c["resp_p"], c["conn_state"]) for c in conns] == [(80, "SF"), (443, "REJ")]


# -- help -------------------------------------------------------------------------------
def test_every_command_and_argument_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, cli.argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert set(helps) == set(sub.choices)
    for name, p in sub.choices.items():
        assert helps[name] and "\n" not in helps[name], name
        assert p.description, name
        for action in p._actions:
            assert action.help, (name, action.dest)


# -- JSON floats -----------------------------------------------------------------------
def _floats(obj):
    if isinstance(obj, float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _floats(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _floats(v)


def _decimals(x: float) -> int:
    text = repr(x)
    if "e-" in text:
        mantissa, exp = text.split("e-")
        return len(mantissa.partition(".")[2]) + int(exp)
    return len(text.partition(".")[2])


def test_json_floats_are_rounded_to_the_microsecond(data_dir):
    import fastseg
    path = data_dir / "lo_conv_ns.pcap"           # nanosecond timestamps
    summary = json.loads(run("summary", path, "--json").stdout)
    floats = list(_floats(summary))
    assert len(floats) > 20 and max(map(_decimals, floats)) <= 6
    conns = [json.loads(l) for l in run("conns", path).stdout.splitlines()]
    assert max(_decimals(v) for row in conns for v in _floats(row)) <= 6
    exact = fastseg.analyze(str(path), keep_connections=True).connections["ts"]
    exact = exact / 1e9 if exact.dtype.kind in "iu" else exact
    assert [row["ts"] for row in conns] == pytest.approx([float(t) for t in exact], abs=5.1e-7)


def test_demo_says_why_its_capture_has_bad_checksums():
    proc = run("demo", "--connections", "2000", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["checksums"]["bad"] > 0 and d["checksums"]["offload"] == []
    [line] = proc.stderr.splitlines()
    assert f"{d['checksums']['bad']} of its {d['capture']['packets']} packets" in line
    assert "damaged copies with a wrong TCP checksum" in line
    assert run("demo", "--connections", "200", "--quiet").stderr == ""


def test_load_test_with_retransmitted_syns_is_summarised(tmp_path):
    """60 connections to one port inside 0.2 s, each SYN sent three times,
    all completed and closed: an ordinary load test, not a SYN flood (it
    used to end in an IndexError in summary, conns and plot)."""
    c, s = [127, 0, 0, 1], [127, 0, 0, 2]
    pkts = []
    for i in range(60):
        port = 30000 + i
        pkts += [_tcp_packet(c, s, port, 7000, 100, 0, 0x02)] * 3
        pkts += [_tcp_packet(s, c, 7000, port, 500, 101, 0x12),
                 _tcp_packet(c, s, port, 7000, 101, 501, 0x10),
                 _tcp_packet(c, s, port, 7000, 101, 501, 0x11),
                 _tcp_packet(s, c, 7000, port, 501, 102, 0x11),
                 _tcp_packet(c, s, port, 7000, 102, 502, 0x10)]
    path = tmp_path / "load.pcap"
    with open(path, "wb") as fh:                 # all inside one second
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, pkt in enumerate(pkts):
            fh.write(struct.pack("<IIII", 1700000000, i * 500, len(pkt), len(pkt)) + pkt)
    proc = run("summary", path, "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    d = json.loads(proc.stdout)
    assert d["handshakes"]["completed"] == 60 and d["handshakes"]["syn_retransmits"] == 120
    assert d["syn_flood"] == []
    assert run("conns", path).stdout.count("\n") == 60
    pytest.importorskip("matplotlib")
    assert run("plot", path, "-o", tmp_path / "load.png").returncode == 0


def test_summary_json_is_the_same_for_every_thread_count(small_pcap):
    outs = [run("summary", "--json", "-j", j, small_pcap).stdout for j in (1, 2, 3)]
    assert outs[0] == outs[1] == outs[2] and json.loads(outs[0])["capture"]["packets"] > 0


def test_bad_thread_count_is_one_line_exit_2(small_pcap):
    proc = run("summary", "-j", "0", small_pcap)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
