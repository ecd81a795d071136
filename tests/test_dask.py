"""fastseg.dask: files read as one capture on Dask equal one process.

The oracle is the single-process path on the unsplit capture
(``fastseg.analyze``): captures are split into rotated files with editcap
(by packet count and by time) so that connections cross every boundary, and
the report and every connection row must come out identical."""
import asyncio
import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")

import rangecaps

import fastseg
from fastseg import synth

ROOT = Path(__file__).resolve().parents[1]
LO_HTTP = ROOT / "bench" / "data" / "lo_http.pcap.gz"
needs_editcap = pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap missing")


def _editcap(src, out_dir, *args):
    out_dir.mkdir()
    subprocess.run(["editcap", *args, str(src), str(out_dir / "part.pcap")], check=True,
                   capture_output=True)
    return sorted(str(p) for p in out_dir.iterdir())


def _edge_capture(path):
    """A hand-made capture whose connections meet the tracker's timers and
    port reuse across file boundaries (one packet per file when split with
    ``editcap -c 1``)."""
    import dpkt

    def pkt(t, src, sport, dst, dport, flags, seq, ack=0, data=b""):
        tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                           win=65535, data=data)
        ip = dpkt.ip.IP(src=bytes(map(int, src.split("."))), dst=bytes(map(int, dst.split("."))),
                        p=6, ttl=64, data=tcp)
        ip.len = len(ip)
        eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)
        return t, bytes(eth)

    S, A, F, R, P = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST, \
        dpkt.tcp.TH_PUSH
    c, s = "10.0.0.1", "10.0.0.2"
    out = []

    def conn(t, sport, isn=1000, close=True, data=b"hi"):
        out.extend([pkt(t, c, sport, s, 80, S, isn),
                    pkt(t + 0.01, s, 80, c, sport, S | A, 5000, isn + 1),
                    pkt(t + 0.02, c, sport, s, 80, A, isn + 1, 5001),
                    pkt(t + 0.03, c, sport, s, 80, P | A, isn + 1, 5001, data)])
        if close:
            n = isn + 1 + len(data)
            out.extend([pkt(t + 0.04, c, sport, s, 80, F | A, n, 5001),
                         pkt(t + 0.05, s, 80, c, sport, F | A, 5001, n + 1),
                         pkt(t + 0.06, c, sport, s, 80, A, n + 1, 5002)])

    t0 = 1_700_000_000.0
    conn(t0, 40001)                      # closed, then reused 2 s later (new ISN)
    conn(t0 + 2, 40001, isn=90000)
    conn(t0 + 3, 40002, close=False)     # idle 299 s: same connection
    out.append(pkt(t0 + 302.5, c, 40002, s, 80, P | A, 1003, 5001, b"more"))
    conn(t0 + 4, 40003, close=False)     # idle 301 s: expired, a new one
    out.append(pkt(t0 + 305.5, c, 40003, s, 80, P | A, 1003, 5001, b"late"))
    out.append(pkt(t0 + 5, c, 40004, s, 80, S, 7000))       # attempt, retransmit at 3 s
    out.append(pkt(t0 + 8, c, 40004, s, 80, S, 7000))
    out.append(pkt(t0 + 6, c, 40005, s, 80, S, 8000))       # attempt expires (5 s),
    out.append(pkt(t0 + 12, c, 40005, s, 80, S, 8000))      # so this SYN starts anew
    out.append(pkt(t0 + 7, c, 40006, s, 81, S, 9000))       # refused
    out.append(pkt(t0 + 7.01, s, 81, c, 40006, R | A, 0, 9001))
    out.append(pkt(t0 + 7.5, c, 40006, s, 81, S, 9500))     # and retried after the RST
    conn(t0 + 9, 40007)                  # closed; a stray ACK 4 s later joins it,
    out.append(pkt(t0 + 13.06, c, 40007, s, 80, A, 1006, 5002))
    conn(t0 + 20, 40008)                 # one 6 s later starts a new one
    out.append(pkt(t0 + 26.06, c, 40008, s, 80, A, 1006, 5002))
    out.sort(key=lambda p: p[0])
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh)
        for t, buf in out:
            w.writepkt(buf, t)
    return len(out)


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    lo = tmp / "lo_http.pcap"
    with gzip.open(LO_HTTP, "rb") as src, open(lo, "wb") as dst:
        shutil.copyfileobj(src, dst)
    syn = tmp / "synth.pcap"
    synth.generate(str(syn), connections=1500, seed=5, duration=6.0)
    edge = tmp / "edge.pcap"
    _edge_capture(edge)
    return {
        "lo": (lo, _editcap(lo, tmp / "lo_c", "-c", "700")),
        "synth": (syn, _editcap(syn, tmp / "synth_i", "-i", "1")),
        "edge": (edge, _editcap(edge, tmp / "edge_c", "-c", "1")),
    }


def _same_report(got, whole, parts, **kw):
    ref = fastseg.analyze(str(whole), **kw).to_dict()
    mine = got.to_dict()
    assert mine["files"] == parts
    ref.pop("files"), mine.pop("files")
    assert mine == ref


def _same_connections(frame, whole, **kw):
    ref = fastseg.analyze(str(whole), keep_connections=True, **kw).connections.to_pandas()
    got = frame.compute() if hasattr(frame, "compute") else frame
    assert len(got) == len(ref) > 0
    got = got.sort_values("uid").reset_index(drop=True)
    ref = ref.sort_values("uid").reset_index(drop=True)
    assert got["uid"].is_unique
    for name in ref.columns:
        mine, theirs = got[name].astype(object), ref[name].astype(object)
        assert mine.isna().equals(theirs.isna()), name
        assert mine[~mine.isna()].equals(theirs[~theirs.isna()]), name


@needs_editcap
@pytest.mark.parametrize("name", ["lo", "synth", "edge"])
def test_summary_and_connections_equal_one_process(captures, name):
    from fastseg import dask as fdask
    whole, parts = captures[name]
    assert len(parts) >= 6
    _same_report(fdask.summary(parts), whole, parts)
    _same_connections(fdask.connections(parts, npartitions=3), whole)


@needs_editcap
def test_connections_cross_the_boundaries_yet_few_segments_move(captures):
    from fastseg import dask as fdask
    whole, parts = captures["lo"]
    plan = fdask.plan(parts)["partitions"]
    # every boundary is crossed by a connection ...
    assert all(p["crossing"] > 0 for p in plan[:-1])
    # ... and only their segments are shuffled
    moved = sum(p["fragments"] for p in plan)
    total = sum(p["segments"] for p in plan)
    assert total == len(fastseg.read_segments(str(whole)))
    assert 0 < moved < 0.2 * total


@needs_editcap
def test_edge_cases_cross_every_boundary(captures):
    from fastseg import dask as fdask
    whole, parts = captures["edge"]
    plan = fdask.plan(parts)["partitions"]
    # one packet per file: everything but the lone packets is a fragment
    assert sum(p["fragments"] for p in plan) >= len(parts) - 4
    conns = fastseg.analyze(str(whole), keep_connections=True).connections
    # the timers and reuse the capture was made for, as one process sees them
    ports = conns["orig_p"].tolist()
    assert ports.count(40001) == 2 and ports.count(40003) == 2 and ports.count(40002) == 1
    assert ports.count(40004) == 1 and ports.count(40005) == 2 and ports.count(40008) == 2
    assert ports.count(40007) == 1


@needs_editcap
def test_summary_on_a_local_cluster_with_processes(captures):
    distributed = pytest.importorskip("dask.distributed")
    from fastseg import dask as fdask
    whole, parts = captures["synth"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _same_report(fdask.summary(parts, client=client), whole, parts)
        _same_connections(fdask.connections(parts, client=client), whole)


@needs_editcap
def test_summary_on_a_threaded_local_cluster_from_a_glob(captures):
    distributed = pytest.importorskip("dask.distributed")
    from fastseg import dask as fdask
    whole, parts = captures["lo"]
    glob = str(Path(parts[0]).parent / "*.pcap")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _same_report(fdask.summary(glob, client=client), whole, parts)


@needs_editcap
def test_segments_one_partition_per_file_with_projection(captures):
    from fastseg import dask as fdask
    whole, parts = captures["lo"]
    frame = fdask.segments(parts, columns=["ts_ns", "src", "seq"])
    assert frame.npartitions == len(parts)
    assert list(frame.columns) == ["ts_ns", "src", "seq"]
    df = frame.compute()
    ref = fastseg.read_segments(str(whole))
    assert df["seq"].tolist() == ref["seq"].tolist()
    assert df["src"].tolist() == ref.src_text().tolist()
    assert not (df.dtypes == object).any()


def test_no_files_is_an_error(tmp_path):
    from fastseg import dask as fdask
    with pytest.raises(FileNotFoundError):
        fdask.summary(str(tmp_path / "*.pcap"))


@needs_editcap
def test_cli_summary_dask_local_same_output(captures):
    pytest.importorskip("dask.distributed")
    import sys
    whole, parts = captures["lo"]
    # the fastseg this test imports: the environment's, as installed
    run = lambda *a: subprocess.run([sys.executable, "-m", "fastseg", "summary", "--json", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    plain, dist = run(*parts), run("--dask", "local:2", *parts)
    assert plain.returncode == 0 and dist.returncode == 0, dist.stderr
    assert dist.stdout == plain.stdout
    bad = run("--dask", "local:zero", *parts)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "local:N" in bad.stderr


# -- one big file in byte ranges -------------------------------------------------

@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranges")
    ng = tmp / "multi.pcapng"
    rangecaps.multi_section_pcapng(ng)
    return {"pcap": rangecaps.lo_http_pcap(tmp / "lo.pcap"), "pcapng": ng}


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_one_file_in_byte_ranges_equals_one_process(big_files, kind):
    from fastseg import dask as fdask
    whole = big_files[kind]
    # small batches (the checksum verdict is reached batch by batch, as one
    # process reaches it) and ranges of a few batches each
    kw = {"batch_packets": 300}
    parts = fdask.partitions(whole, partition_bytes=60_000, **kw)
    assert len(parts) >= 8 and all(p.byte_range is not None for p in parts)
    plan = fdask.plan(whole, partition_bytes=60_000, **kw)["partitions"]
    assert len(plan) == len(parts)
    assert all(p["crossing"] > 0 for p in plan[:-1])
    assert sum(p["segments"] for p in plan) == len(fastseg.read_segments(str(whole)))
    _same_report(fdask.summary(whole, partition_bytes=60_000, **kw), whole, [str(whole)], **kw)
    _same_connections(fdask.connections(whole, partition_bytes=60_000, npartitions=3, **kw),
                      whole, **kw)


# -- time windows --------------------------------------------------------------------

@needs_editcap
def test_a_time_window_prunes_partitions_and_equals_the_clipped_capture(captures, tmp_path):
    from fastseg import dask as fdask
    whole, parts = captures["synth"]
    ts = np.sort(fastseg.read_segments(str(whole))["ts_ns"])
    # bounds between packets, inside the second and the fifth file
    lo_i, hi_i = len(ts) * 2 // 7, len(ts) * 4 // 7
    start = (int(ts[lo_i - 1]) + int(ts[lo_i])) / 2e9
    end = (int(ts[hi_i - 1]) + int(ts[hi_i])) / 2e9
    assert ts[lo_i - 1] < ts[lo_i] and ts[hi_i - 1] < ts[hi_i]
    kept = fdask.partitions(parts, start=start, end=end)
    assert 2 <= len(kept) < len(parts)
    assert {p.path for p in kept} < set(parts)
    clipped = tmp_path / "clipped.pcap"
    subprocess.run(["editcap", "-A", f"{start:.9f}", "-B", f"{end:.9f}", str(whole),
                    str(clipped)], check=True, capture_output=True)
    seg = fdask.segments(parts, columns=["ts_ns", "seq"], start=start, end=end)
    assert seg.npartitions == len(kept)
    ref = fastseg.read_segments(str(clipped))
    got = seg.compute()
    assert got["seq"].tolist() == ref["seq"].tolist() and len(got) == hi_i - lo_i
    _same_connections(fdask.connections(parts, start=start, end=end), clipped)


# -- an asynchronous client -------------------------------------------------------------

@needs_editcap
def test_summary_and_connections_under_an_asynchronous_client(captures):
    distributed = pytest.importorskip("dask.distributed")
    from fastseg import dask as fdask
    whole, parts = captures["lo"]

    async def main():
        async with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                            dashboard_address=None, asynchronous=True) as cluster, \
                distributed.Client(cluster, asynchronous=True) as client:
            report = await fdask.summary(parts, client=client)
            frame = await fdask.connections(parts, client=client)
            return report, await client.compute(frame)

    report, conns = asyncio.run(main())
    _same_report(report, whole, parts)
    _same_connections(conns, whole)


# -- checksum offload diagnosed in an earlier file ------------------------------------

def _offload_capture(path):
    """A sender whose checksums are left unfilled (offload): diagnosed in the
    first file's first batch; in the second file its first batch holds only
    two such segments, too few to diagnose it from that file alone."""
    import struct

    import dpkt

    def pkt(t, src, sport, dst, dport, flags, seq, ack=0, data=b"", unfilled=False):
        tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                           win=65535, data=data)
        s, d = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
        if unfilled:
            # what an offloading NIC leaves: the folded pseudo-header sum
            total = sum(struct.unpack("!4H", s + d)) + 6 + len(tcp)
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            tcp.sum = total
        ip = dpkt.ip.IP(src=s, dst=d, p=6, ttl=64, data=tcp)
        ip.len = len(ip)
        return t, bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip))

    S, A, P = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH
    h, s = "10.0.0.9", "10.0.0.2"
    out = []
    for t, port in ((1_700_000_000.0, 5000), (1_700_000_001.0, 5001)):
        out += [pkt(t, h, port, s, 80, S, 100, unfilled=True),
                pkt(t + .01, s, 80, h, port, S | A, 500, 101),
                pkt(t + .02, h, port, s, 80, A, 101, 501, unfilled=True),
                pkt(t + .03, s, 80, h, port, P | A, 501, 101, b"hello"),
                pkt(t + .04, h, port, s, 80, P | A, 101, 506, b"hi", unfilled=True),
                pkt(t + .05, s, 80, h, port, A, 506, 103)]
    out[3], out[4] = out[4], out[3]     # first file: three unfilled in the first four
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh)
        for t, buf in out:
            w.writepkt(buf, t)


@needs_editcap
def test_checksum_offload_diagnosed_earlier_holds_in_later_files(tmp_path):
    from fastseg import dask as fdask
    whole = tmp_path / "offload.pcap"
    _offload_capture(whole)
    parts = _editcap(whole, tmp_path / "parts", "-c", "6")
    assert len(parts) == 2
    kw = {"batch_packets": 4}
    ref = fastseg.analyze(parts, keep_connections=True, **kw)
    # one process trusts the second connection's unfilled checksums ...
    assert ref.to_dict()["checksums"]["offload"][0]["host"] == "10.0.0.9"
    assert ref.connections.to_pandas()["conn_state"].tolist() == ["S1", "S1"]
    # ... which a reader of the second file alone would not
    alone = fastseg.analyze(parts[1], keep_connections=True, **kw).connections.to_pandas()
    assert alone["conn_state"].tolist() != ["S1"]
    got = fdask.summary(parts, **kw).to_dict()
    mine, theirs = dict(got), ref.to_dict()
    assert mine.pop("files") == theirs.pop("files") == parts
    assert mine == theirs
    conns = fdask.connections(parts, **kw).compute().sort_values("uid")
    assert conns["history"].tolist() == ref.connections.to_pandas().sort_values("uid")[
        "history"].tolist()


@needs_editcap
def test_a_tracked_partition_moves_between_workers_intact(captures):
    """A worker may hand a partition's state to another (pickled): the
    report folded from the copy is the report folded from the original."""
    import pickle

    from fastseg import dask as fdask
    from fastseg.checksum import ChecksumVerdict
    _, parts = captures["synth"]
    scan = fdask._track(fdask._read(fdask.Partition(parts[2]), {}), [ChecksumVerdict()], {})
    copy = pickle.loads(pickle.dumps(scan, protocol=5))
    assert copy.__sizeof__() == scan.__sizeof__() > 100_000
    none = np.zeros(0, np.uint64)
    reports = [fdask._split(s, none, none, 0, {}, 1, False)[0].finish([parts[2]]).to_dict()
               for s in (scan, copy)]
    assert reports[0] == reports[1] == fastseg.analyze(parts[2]).to_dict()
