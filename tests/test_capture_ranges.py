"""Byte ranges of one capture file (capture.index_capture and
open_capture(byte_range=)): read on their own, the ranges give exactly the
batches of one pass over the file.  The oracle is that one pass (itself
checked against tshark elsewhere) and, for the multi-section pcapng, tshark's
frame count and link types."""
import gzip
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest
import rangecaps

from fastseg.capture import ByteRange, index_capture, open_capture

COLUMNS = ("offset", "caplen", "wirelen", "ts_ns", "linktype", "record_offset", "frame")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranges")
    pcap = rangecaps.lo_http_pcap(tmp / "lo.pcap")
    ng = tmp / "multi.pcapng"
    rangecaps.multi_section_pcapng(ng)
    return {"pcap": pcap, "pcapng": ng}


def _batches(path, **kw):
    with open_capture(path, batch_packets=300, **kw) as reader:
        return [{c: np.array(getattr(b, c)) for c in COLUMNS} for b in reader]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_ranges_read_alone_give_the_batches_of_one_pass(files, kind):
    path = files[kind]
    whole = _batches(path)
    ranges = index_capture(path, 40_000, batch_packets=300)
    assert len(ranges) >= 8
    # contiguous, from the header's end to the file's end
    assert ranges[-1].stop == path.stat().st_size
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:]))
    assert sum(r.packets for r in ranges) == sum(len(b["frame"]) for b in whole)
    pieces = [b for r in ranges for b in _batches(path, byte_range=r)]
    assert [len(b["frame"]) for b in pieces] == [len(b["frame"]) for b in whole]
    for got, ref in zip(pieces, whole):
        for col in COLUMNS:
            assert np.array_equal(got[col], ref[col]), col
    # each range's time span and first frame are its packets' own
    for r in ranges:
        mine = _batches(path, byte_range=r)
        ts = np.concatenate([b["ts_ns"] for b in mine])
        assert (r.ts_first, r.ts_last) == (ts.min(), ts.max())
        assert mine[0]["frame"][0] == r.first_frame


def test_pcapng_ranges_carry_their_sections_interfaces(files, tshark):
    path = files["pcapng"]
    ranges = index_capture(path, 40_000, batch_packets=300)
    sections = {r.section for r in ranges}
    assert sections == {0, 1}
    second = [r for r in ranges if r.section == 1]
    # a range of the second section starts from that section's SHB and IDBs
    assert all(len(r.header_blocks) == 3 and r.header_blocks[0] > 0 for r in second)
    with open_capture(path, byte_range=second[-1]) as reader:
        assert [i["linktype"] for i in reader.interfaces] == [276, 1]
        list(reader)
    # the link types of every frame, as tshark reads them
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.interface_id",
                          "-e", "frame.encap_type"], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    ref = Counter(line.split("\t")[1] for line in out if line)
    mine = Counter()
    for r in ranges:
        for b in _batches(path, byte_range=r):
            mine.update(b["linktype"].tolist())
    assert sum(ref.values()) == sum(mine.values())
    assert sorted(ref.values()) == sorted(mine.values())
    assert set(mine) == {1, 113, 276}


def test_compressed_files_are_not_split(files, tmp_path):
    gz = tmp_path / "lo.pcap.gz"
    with open(files["pcap"], "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert index_capture(gz, 40_000) is None
    whole = index_capture(files["pcap"], 1 << 40)
    assert len(whole) == 1 and whole[0].start == 24
    with pytest.raises(ValueError):
        open_capture(gz, byte_range=whole[0])
    with pytest.raises(ValueError):
        open_capture(files["pcap"], byte_range=ByteRange(24, 1 << 40, 1, 0, None, None))
