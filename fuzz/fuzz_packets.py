"""Fuzz the packet parser, checksum kernels and tracker on raw packets.

The input is split into packets by :func:`captures.split_packets` (one byte picks
the link type, then packets each prefixed by a 2-byte big-endian length), parsed with ``fastseg.parse_packets`` and
checked like a capture: every packet accounted for once, one segment per TCP
packet; then ``fix_checksums`` on a writable copy must leave no TCP checksum
``bad`` when re-verified.

    python3 fuzz/fuzz_packets.py fuzz/corpus/packets -runs=100000
"""
import numpy as np

import _harness
import pipeline
import fastseg

from captures import split_packets


def test_one_input(data):
    linktype, packets = split_packets(data)
    segs = fastseg.parse_packets(packets, linktype=linktype)
    pipeline.check_segments(segs, segs.stats, len(packets))
    if not len(segs) or segs.data is None:
        return
    status = np.asarray(fastseg.verify_checksums(segs))
    pipeline._need(len(status) == len(segs), "one checksum status per segment")
    buf = np.array(segs.data, dtype=np.uint8)
    fastseg.fix_checksums(buf, segs)
    fixed = segs[:]
    fixed.data = buf
    after = np.asarray(fastseg.verify_checksums(fixed))
    pipeline._need(not (after == 1).any(), "a TCP checksum is still bad after fix_checksums")
    pipeline._need(bool((after[status == 2] == 2).all()), "fixing changed 'unverified'")
    conns = fastseg.track(segs)
    pipeline._need(1 <= len(conns) <= len(segs), "connections out of range")


if __name__ == "__main__":
    _harness.run(test_one_input)
