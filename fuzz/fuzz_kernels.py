"""Differential fuzzing of the small kernels against independent references.

* ``internet_checksum`` against RFC 1071 summed in Python;
* ``siphash24`` (one message and rows of a 2-D array) against ``siphashc``;
* ``syncookies.encode`` -> ``check`` round trip: the final ACK of a cookie
  gets back the encoded MSS (one of the Linux table values), and a cookie
  off by one bit is not accepted with a different MSS than the table allows.

    python3 fuzz/fuzz_kernels.py fuzz/corpus/kernels -runs=1000000
"""
import os
import sys

import atheris
import numpy as np
import siphashc

import _harness
import pipeline
import fastseg
from fastseg import syncookies

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from refs import internet_checksum  # noqa: E402

MSS4 = (536, 1300, 1440, 1460)
MSS6 = (1220, 1420, 1440, 8940)


def check_checksum(fdp):
    buf = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    start = fdp.ConsumeIntInRange(0, 7)     # unaligned views
    view = np.frombuffer(b"\0" * start + buf, dtype=np.uint8)[start:]
    got = fastseg.internet_checksum(view)
    pipeline._need(got == internet_checksum(buf), f"internet_checksum {got} != reference")


def check_siphash(fdp):
    key = fdp.ConsumeBytes(16).ljust(16, b"\0")
    rows = fdp.ConsumeIntInRange(0, 8)
    width = fdp.ConsumeIntInRange(0, 64)
    if rows == 0:
        msg = fdp.ConsumeBytes(width)
        got = int(np.asarray(fastseg.siphash24(key, msg)).reshape(-1)[0])
        pipeline._need(got == siphashc.siphash(key, msg), "siphash24 != siphashc")
        return
    raw = fdp.ConsumeBytes(rows * width).ljust(rows * width, b"\0")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(rows, width)
    got = np.asarray(fastseg.siphash24(key, arr)).reshape(-1)
    pipeline._need(len(got) == rows, "siphash24: one hash per row")
    for i in range(rows):
        pipeline._need(int(got[i]) == siphashc.siphash(key, arr[i].tobytes()),
                       f"siphash24 row {i} != siphashc")


def check_cookies(fdp):
    secret = fdp.ConsumeBytes(32).ljust(32, b"\0")
    n = fdp.ConsumeIntInRange(1, 16)
    v6 = fdp.ConsumeBool()
    alen = 16 if v6 else 4
    saddr = np.frombuffer(fdp.ConsumeBytes(n * alen).ljust(n * alen, b"\1"), np.uint8).reshape(n, alen)
    daddr = np.frombuffer(fdp.ConsumeBytes(n * alen).ljust(n * alen, b"\2"), np.uint8).reshape(n, alen)
    sport = np.array([fdp.ConsumeIntInRange(0, 0xFFFF) for _ in range(n)], np.uint16)
    dport = np.array([fdp.ConsumeIntInRange(0, 0xFFFF) for _ in range(n)], np.uint16)
    isn = np.array([fdp.ConsumeIntInRange(0, 0xFFFFFFFF) for _ in range(n)], np.uint32)
    mss_in = np.array([fdp.ConsumeIntInRange(0, 0xFFFF) for _ in range(n)], np.uint16)
    count = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
    cookies, mss = syncookies.encode(secret, saddr, daddr, sport, dport, isn, mss_in, count)
    cookies, mss = np.asarray(cookies), np.asarray(mss)
    table = MSS6 if v6 else MSS4
    pipeline._need(len(cookies) == n and len(mss) == n, "one cookie per SYN")
    pipeline._need(set(mss.tolist()) <= set(table), f"encoded MSS {mss} not in the table")
    seq = (isn.astype(np.uint64) + 1).astype(np.uint32)
    ack = (cookies.astype(np.uint64) + 1).astype(np.uint32)
    back = np.asarray(syncookies.check(secret, saddr, daddr, sport, dport, seq, ack, count))
    pipeline._need(bool((back == mss).all()), f"check {back} != encoded {mss}")
    flip = np.uint32(1) << np.uint32(fdp.ConsumeIntInRange(0, 31))
    other = np.asarray(syncookies.check(secret, saddr, daddr, sport, dport, seq, ack ^ flip, count))
    pipeline._need(set(other.tolist()) <= set(table) | {0}, "check returned an MSS off the table")


CHECKS = (check_checksum, check_siphash, check_cookies)


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    which = fdp.ConsumeIntInRange(0, len(CHECKS) - 1)
    CHECKS[which](fdp)


if __name__ == "__main__":
    _harness.run(test_one_input)
