"""The hostile-input contract, as one checkable function.

:func:`check_capture` runs capture bytes through every stage that exists
(read -> parse -> checksum -> track) and checks what must hold for *any*
input: every packet record read is accounted for exactly once, segments are
one per TCP packet, columns have one row per segment, offsets stay inside the
batch buffer, checksum statuses are known codes, every segment lands in a
connection; and the only exception is :class:`fastseg.CaptureError` naming a
byte offset inside the stream.  A broken rule raises :class:`Violation`
(anything else escaping is a finding too).

Shared by the atheris harnesses (``fuzz/fuzz_*.py``) and the hypothesis
property suite (``tests/test_hostile.py``).
"""
import io
import os
import warnings

import numpy as np

import fastseg
from fastseg import CaptureError, TruncatedCaptureWarning, open_capture
from fastseg import _consts

CHECKSUM_CODES = {_consts.CHECKSUM_STATUS_NAMES.index(n) for n in _consts.CHECKSUM_STATUS_NAMES}


class Violation(AssertionError):
    """An invariant of the hostile-input contract was broken."""


def _available(func, *args, **kwargs):
    """Call one stage of the pipeline."""
    return func(*args, **kwargs)


def _stage(name):
    """The public callable for a stage."""
    if name == "parse_batch":
        from fastseg.parse import parse_batch
        return parse_batch
    return getattr(fastseg, name)


PARSE_BATCH = _stage("parse_batch")
VERIFY = _stage("verify_checksums")
TRACK = _stage("track")


def _need(cond, what):
    if not cond:
        raise Violation(what)


def check_batch(batch):
    """Structural invariants of one PacketBatch."""
    n = len(batch)
    cols = (batch.offset, batch.caplen, batch.wirelen, batch.ts_ns, batch.linktype,
            batch.record_offset)
    _need(all(len(c) == n for c in cols), "batch columns differ in length")
    if n:
        end = batch.offset.astype(np.int64) + batch.caplen.astype(np.int64)
        _need(int(batch.offset.min()) >= 0 and int(end.max()) <= len(batch.data),
              "a packet's bytes lie outside the batch buffer")
        cap = getattr(fastseg.capture, "CAPLEN_MAX", 1 << 32)
        _need(int(batch.caplen.max()) <= cap, "caplen over the documented cap")
        _need(bool((np.diff(batch.record_offset) > 0).all()), "record offsets not increasing")


def check_segments(segs, stats, n_packets):
    _need(stats.packets == n_packets,
          f"stats.packets {stats.packets} != {n_packets} packet records")
    _need(stats.packets == stats.tcp + stats.non_tcp + stats.malformed, "accounting sum")
    _need(int(stats.counts.min()) >= 0, "negative outcome count")
    _need(len(segs) == stats.tcp, f"{len(segs)} segments for {stats.tcp} TCP packets")
    for name in segs.columns:
        _need(len(segs[name]) == len(segs), f"column {name} has the wrong length")
    if len(segs) and segs.data is not None and "_l3_off" in segs:
        l3 = np.asarray(segs["_l3_off"], dtype=np.int64)
        l4 = np.asarray(segs["_l4_off"], dtype=np.int64)
        end = l3 + np.asarray(segs["_l3_caplen"], dtype=np.int64)
        _need(int(l3.min()) >= 0 and int(end.max()) <= len(segs.data),
              "a segment's IP bytes lie outside Segments.data")
        _need(bool(((l4 >= l3) & (l4 + 20 <= end)).all()),
              "a TCP header offset outside its packet's captured bytes")


def check_capture(data, *, path_hint="<fuzz>", mmap_dir=None, batch_packets=7,
                  batch_bytes=1 << 16):
    """Run ``data`` (whole capture-file bytes) through every stage; returns
    ``(packets, segments, connections, error)`` where ``error`` is the
    CaptureError (or None).  Raises :class:`Violation` on a broken rule."""
    if mmap_dir is not None:
        path = os.path.join(mmap_dir, "capture.bin")
        with open(path, "wb") as f:
            f.write(data)
        source = path
    else:
        source = io.BytesIO(data)
        source.name = path_hint
    packets = 0
    parts = []
    error = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedCaptureWarning)
        try:
            reader = open_capture(source, batch_packets=batch_packets, batch_bytes=batch_bytes)
            with reader:
                for batch in reader:
                    check_batch(batch)
                    _need(batch.first_frame == packets + 1, "first_frame skips or repeats")
                    packets += len(batch)
                    if PARSE_BATCH is not None:
                        segs = _available(PARSE_BATCH, batch)
                        if segs is not NotImplemented:
                            check_segments(segs, segs.stats, len(batch))
                            parts.append(segs)
        except CaptureError as exc:
            _need(isinstance(exc.offset, int) and exc.offset >= 0,
                  f"CaptureError without a byte offset: {exc!r}")
            _need(bool(exc.reason), "CaptureError without a reason")
            error = exc
    n_segs = n_conns = 0
    if parts:
        segs = parts[0] if len(parts) == 1 else fastseg.Segments.concat(parts)
        n_segs = len(segs)
        status = None
        if VERIFY is not None:
            status = _available(VERIFY, segs)
            if status is not NotImplemented:
                status = np.asarray(status)
                _need(len(status) == n_segs, "one checksum status per segment")
                _need(set(np.unique(status).tolist()) <= CHECKSUM_CODES, "unknown checksum status")
        if TRACK is not None and n_segs:
            conns = _available(TRACK, segs)
            if conns is not NotImplemented:
                n_conns = len(conns)
                _need(1 <= n_conns <= n_segs, f"{n_conns} connections for {n_segs} segments")
                if "conn" in segs.columns:
                    conn = np.asarray(segs["conn"])
                    _need(int(conn.min()) >= 0 and int(conn.max()) < n_conns,
                          "a segment's connection index is out of range")
                    if "orig_pkts" in conns.columns and "resp_pkts" in conns.columns:
                        # every segment lands in one connection and is counted
                        # there, except those dropped for a bad checksum (they
                        # are marked C/c in history, not counted as packets)
                        counted = np.asarray(conns["orig_pkts"], np.int64) + \
                            np.asarray(conns["resp_pkts"], np.int64)
                        given = np.bincount(conn, minlength=n_conns)
                        bad = np.zeros(n_conns, np.int64)
                        if status is not NotImplemented and status is not None:
                            bad = np.bincount(conn, weights=(status == 1), minlength=n_conns)
                        _need(bool(((counted <= given) & (given - counted <= bad)).all()),
                              "connection packet counts differ from the segments given to them")
    return packets, n_segs, n_conns, error
