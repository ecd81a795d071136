"""Fuzz the whole path: capture-file bytes -> reader -> parser -> checksums -> tracker.

Each input is a whole file (pcap, pcapng, gzip-compressed either).  Inputs
whose length is a multiple of 3 are read from a file on /dev/shm (the
memory-mapped path), the others from a stream (the chunked path, with tiny
batches so records straddle chunk boundaries).  Any exception other than
CaptureError, any broken accounting rule (pipeline.Violation) and any
sanitizer report is a crash.

    python3 fuzz/fuzz_capture.py fuzz/corpus/capture -runs=100000
"""
import tempfile

import _harness
import pipeline

_MMAP_DIR = tempfile.mkdtemp(prefix="fastseg-fuzz-", dir="/dev/shm")


def test_one_input(data):
    mmap_dir = _MMAP_DIR if len(data) % 3 == 0 else None
    pipeline.check_capture(data, mmap_dir=mmap_dir, batch_packets=1 + len(data) % 13,
                           batch_bytes=1 + (len(data) * 7) % 5000)


if __name__ == "__main__":
    _harness.run(test_one_input)
