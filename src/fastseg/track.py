"""Connection tracking: Zeek's conn_state/history, RFC 9293 endpoint states,
handshake measurements, in one Cython pass with bounded memory.

``track(segments)`` is the one-shot form; ``Tracker`` takes batches and
emits finished connections.  ``TRANSITIONS`` is the observer's RFC 9293
state machine as a table and ``transition(states, events)`` its vectorised
step.

Zeek rules ported (zeek/zeek, TCPSessionAdapter.cc, TCP_Endpoint.cc, TCP.cc,
base/protocols/conn/main.zeek):

* endpoint states INACTIVE SYN_SENT SYN_ACK_SENT PARTIAL ESTABLISHED CLOSED
  RESET move as in ``UpdateStateMachine``; the responder is ESTABLISHED at
  its SYN-ACK, and so is a SYN_SENT originator;
* ``conn_state`` is Zeek's ``conn_state()`` over the final endpoint states,
  payload sizes and history (RSTOS0 matches ``^\\^?S[^HAFGIQ]*R.*$``);
* history letters: upper case for the originator; S/H/F/R logged again only
  for a new (relative) sequence number; D/A/I/Q once per direction; C
  (bad checksum), T (retransmission), W (zero window) at the 1st, 10th,
  100th... event; ``^`` when roles flip (first packet not a plain SYN
  coming from a likely server port, SYN and SYN-ACK seen in reverse, or a
  connection that began with a SYN-ACK carrying its first ACK or data:
  ``TCP_Endpoint::CheckHistory`` turns it around and its history "H"
  becomes "^h");
* content gaps (``TCP_Reassembler``: ``DataSent``, ``AckReceived``,
  ``Undelivered``, ``Gap``) from sequence ranges alone: per direction the
  delivered edge, the data buffered above a hole and the highest ack
  applied; an ack beyond what was delivered skips the hole, counted as G/g
  (1st, 10th, 100th...) and in ``missed_bytes`` while both sides are
  established or cleanly closing.  Acks stop at the FIN, an ack of 1 or 2
  on a partial connection is no gap, a direction with more than 16384
  bytes above a hole and nothing acked is given up
  (``tcp_max_above_hole_without_any_acks``), and a payload not captured in
  full (snap length) is never delivered, so acks over it are gaps;
* bytes come from sequence space (``TCP_Endpoint::Size``);
* timers: an unanswered attempt expires ``attempt_delay`` (5 s) after its
  first SYN, a closed or reset connection ``close_delay`` (5 s) after its
  last packet, any connection after ``idle_timeout`` (300 s) of silence
  (an hour for FTP, SSH, telnet and rlogin once established:
  ``Conn::port_inactivity_timeouts``);
  a segment for an expired connection, or a SYN that ``IsReuse`` accepts
  (any SYN once a side has closed; a SYN with a new ISN), starts a new
  connection;
* duration stops advancing once both sides have closed;
* a segment with a bad checksum is counted in history (C/c) and nothing
  else, unless its sender is diagnosed as offloading checksums.

Not ported: Zeek's variable removal delay of half-closed connections
(``tcp_session_timer`` re-checks); several holes buffered at once are kept
as one range (their hull), so such a direction may show fewer gaps than
Zeek's block list; the reassembler's 10 MiB limit without further acks
(``tcp_excessive_data_without_further_acks``); anything that application
analyzers and scripts decide
(``skip_further_processing``, DPD, ``likely_server_ports`` beyond the
default set, timer budgets such as ``max_timer_expires``).

Handshake measurements are matched by sequence numbers: ``synack_ts`` is
the first SYN-ACK acknowledging the last SYN's ISN, ``ack_ts`` the first
ACK from the other side at or beyond the SYN-ACK's ISN + 1.
``syn_synack`` runs from the last SYN before that SYN-ACK, ``synack_ack``
from the last SYN-ACK before that ACK, and ``handshake_rtt`` is
Wireshark's iRTT (last SYN to the completing ACK; ``ack_ts - syn_ts`` is the
connect time from the first SYN).  When a capture holds the SYN-ACK before
its SYN (two interfaces, interrupt coalescing) the roles are fixed but the
handshake times stay null.

A Tracker is not thread-safe: use one per thread (e.g. one per flow_key
partition).
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

import numpy as np

from . import _consts, _track
from .checksum import ChecksumVerdict
from .connections import CONNECTION_COLUMNS, Connections
from .loss import LOSS_COLUMNS, SEGMENT_LOSS_COLUMNS, loss_columns
from .segments import Segments

__all__ = ["track", "Tracker", "transition", "TRANSITIONS", "Connections",
           "RFC_STATES", "EVENTS", "ZEEK_STATES"]

# RFC 9293 states, as an observer on the path can infer them.
RFC_STATES = ("CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
              "FIN-WAIT-2", "CLOSING", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK")
(CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSING,
 TIME_WAIT, CLOSE_WAIT, LAST_ACK) = range(11)

# Segment kinds; an event is a kind seen from one endpoint, sent (kind) or
# received (kind + 7).  A segment that acknowledges the receiver's FIN is
# first an ACK-OF-FIN event and then its own kind (SYN, FIN, data...), if any.
KINDS = ("SYN", "SYN-ACK", "FIN", "ACK-OF-FIN", "RST", "DATA", "ACK")
EVENTS = tuple("SEND-" + k for k in KINDS) + tuple("RECV-" + k for k in KINDS)
(SEND_SYN, SEND_SYNACK, SEND_FIN, SEND_ACKFIN, SEND_RST, SEND_DATA, SEND_ACK,
 RECV_SYN, RECV_SYNACK, RECV_FIN, RECV_ACKFIN, RECV_RST, RECV_DATA, RECV_ACK) = range(14)

ZEEK_STATES = _consts.ZEEK_STATE_NAMES
Z_INACTIVE, Z_SYN_SENT, Z_SYN_ACK_SENT, Z_PARTIAL, Z_ESTABLISHED, Z_CLOSED, Z_RESET = (
    int(_consts.Z_INACTIVE), int(_consts.Z_SYN_SENT), int(_consts.Z_SYN_ACK_SENT),
    int(_consts.Z_PARTIAL), int(_consts.Z_ESTABLISHED), int(_consts.Z_CLOSED),
    int(_consts.Z_RESET))


def _build_transitions() -> np.ndarray:
    t = np.repeat(np.arange(11, dtype=np.uint8)[:, None], 14, axis=1)

    def rule(states, event, new):
        for s in states:
            t[s, event] = new

    any_open = [LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSING,
                TIME_WAIT, CLOSE_WAIT, LAST_ACK]
    # A reset ends the connection for both ends (RFC 9293 3.10.7.x; Linux
    # also lets a RST end TIME-WAIT).
    rule(any_open, SEND_RST, CLOSED)
    rule(any_open, RECV_RST, CLOSED)
    # Opening.
    rule([CLOSED], SEND_SYN, SYN_SENT)
    rule([CLOSED], RECV_SYN, LISTEN)            # assumed listening until it answers
    rule([CLOSED, LISTEN], SEND_SYNACK, SYN_RECEIVED)
    rule([SYN_SENT], RECV_SYNACK, ESTABLISHED)
    rule([SYN_SENT], RECV_SYN, SYN_RECEIVED)    # simultaneous open
    rule([SYN_SENT], SEND_SYNACK, SYN_RECEIVED)
    rule([SYN_RECEIVED], RECV_SYNACK, ESTABLISHED)
    rule([SYN_RECEIVED], RECV_ACK, ESTABLISHED)
    rule([SYN_RECEIVED], RECV_DATA, ESTABLISHED)
    rule([SYN_RECEIVED], RECV_ACKFIN, ESTABLISHED)
    # An ACK or data from SYN-SENT means the SYN-ACK was missed.
    rule([SYN_SENT], SEND_ACK, ESTABLISHED)
    rule([SYN_SENT], SEND_DATA, ESTABLISHED)
    # Midstream: traffic from or to an unseen endpoint shows an open connection.
    rule([CLOSED], SEND_DATA, ESTABLISHED)
    rule([CLOSED], SEND_ACK, ESTABLISHED)
    rule([CLOSED], RECV_DATA, ESTABLISHED)
    rule([CLOSED], RECV_ACK, ESTABLISHED)
    rule([CLOSED], SEND_FIN, FIN_WAIT_1)
    rule([CLOSED], SEND_ACKFIN, CLOSE_WAIT)
    rule([CLOSED], RECV_ACKFIN, FIN_WAIT_2)
    # Closing.  An endpoint shows that it received a FIN by acknowledging
    # it (SEND-ACK-OF-FIN); the FIN's arrival alone moves nobody, so a
    # crossing FIN (simultaneous close) is told apart from a FIN sent after
    # the peer's: FIN-WAIT-1 -> CLOSING -> TIME-WAIT on both sides.
    rule([SYN_SENT, SYN_RECEIVED, ESTABLISHED], SEND_FIN, FIN_WAIT_1)
    rule([SYN_RECEIVED, ESTABLISHED], SEND_ACKFIN, CLOSE_WAIT)
    rule([CLOSE_WAIT], SEND_FIN, LAST_ACK)
    rule([FIN_WAIT_1], SEND_ACKFIN, CLOSING)
    rule([FIN_WAIT_2], SEND_ACKFIN, TIME_WAIT)
    rule([FIN_WAIT_1], RECV_ACKFIN, FIN_WAIT_2)
    rule([CLOSING], RECV_ACKFIN, TIME_WAIT)
    rule([LAST_ACK], RECV_ACKFIN, CLOSED)
    t.setflags(write=False)
    return t


TRANSITIONS: np.ndarray = _build_transitions()

# Ports Zeek treats as likely servers when a connection starts without a
# plain SYN (TCPAnalyzer::IsLikelyServerPort over ``likely_server_ports``).
# Zeek fills that set from the server ports its protocol scripts register
# (``Analyzer::register_for_ports`` in scripts/base/protocols/*/main.zeek);
# these are the TCP ones of a default (non-bare) Zeek: FTP, SSH, SMTP, DNS,
# finger, HTTP, Kerberos, DCE-RPC, SMB, IMAP, LDAP, Modbus, MQTT, MySQL,
# PostgreSQL, RDP, Redis, IRC, SSL/TLS, syslog, XMPP, SOCKS, DNP3.
DEFAULT_LIKELY_SERVER_PORTS = frozenset([
    21, 2811, 22, 25, 587, 53, 79, 80, 81, 631, 1080, 3128, 8000, 8080, 8888, 88, 135,
    139, 445, 143, 389, 3268, 502, 1883, 1434, 3306, 5432, 3389, 6379, 6666, 6667, 6668,
    6669, 443, 465, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223, 514, 5222, 5269,
    20000])


def transition(states, events) -> np.ndarray:
    """One vectorised step of the RFC 9293 observer machine:
    ``TRANSITIONS[states, events]`` (states index ``RFC_STATES``, events
    index ``EVENTS``); arrays broadcast, results are uint8."""
    s, e = np.broadcast_arrays(np.asarray(states), np.asarray(events))
    shape = s.shape
    s = np.ascontiguousarray(s.reshape(-1))
    e = np.ascontiguousarray(e.reshape(-1))
    if s.size and (s.min() < 0 or s.max() >= len(RFC_STATES)):
        raise ValueError("state out of range 0..10")
    if e.size and (e.min() < 0 or e.max() >= len(EVENTS)):
        raise ValueError("event out of range 0..13")
    out = np.empty(s.size, dtype=np.uint8)
    _track.apply_transitions(TRANSITIONS, s.astype(np.uint8), e.astype(np.uint8), out)
    return out.reshape(shape)


class Tracker:
    """Streaming connection tracker.

    ``update(segments)`` tracks a batch (sets ``segments["conn"]``) and
    returns the connections that finished (expired timers, reuse) so far;
    ``flush()`` returns the rest.  Memory is proportional to the
    connections alive at once.  Concatenating every result equals
    ``track()`` over the whole input, whatever the batch split.

    Options: ``idle_timeout`` (seconds, Zeek's tcp_inactivity_timeout),
    ``attempt_delay`` (tcp_attempt_delay), ``close_delay``
    (tcp_close_delay/tcp_reset_delay), ``likely_server_ports`` (ports that
    turn a connection around when it starts without a plain SYN),
    ``checksums`` and ``offload_hosts`` (below), ``secret`` (two 64-bit ints
    keying the flow table; random per process by default),
    ``max_connections`` (a memory budget: when more connections are alive
    after a batch, the least recently active are finished early, oldest
    first, and counted in ``evicted``; about 400 bytes each are held),
    ``loss`` (default on: Wireshark's tcp.analysis per segment, the
    ``analysis``/``ack_rtt``/``bytes_in_flight``/``dup_ack_num`` columns,
    and the per-side loss columns of ``fastseg.loss.LOSS_COLUMNS`` per
    connection, computed in the tracking pass from a state held beside each
    connection record: about 700 bytes more per connection in progress,
    plus 24 per unacknowledged segment; ``loss=False`` skips all of it).

    Checksums: ``"verify"`` keeps every bad-checksum segment out of the
    state machine; ``"ignore"`` trusts every segment; ``"auto"`` (default)
    does as ``verify`` except for senders diagnosed as offloading: those in
    ``offload_hosts`` (address strings or (n, 16) rows) and senders at least
    ``offload_fraction`` (0.9) of whose bad checksums hold the unfilled
    pseudo-header sum; and it trusts every segment once the capture's
    checksums are found meaningless as a whole (rewritten traces).  The
    decision is ``self.verdict`` (a ``fastseg.checksum.ChecksumVerdict``,
    shared with the report) and accumulates over the batches seen so far.
    """

    def __init__(self, idle_timeout: float = 300.0, attempt_delay: float = 5.0,
                 close_delay: float = 5.0, checksums: str = "auto",
                 offload_hosts: Optional[Iterable] = None, offload_fraction: float = 0.9,
                 likely_server_ports: Optional[Iterable[int]] = None, secret=None,
                 max_connections: Optional[int] = None, loss: bool = True):
        if max_connections is not None and int(max_connections) < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = None if max_connections is None else int(max_connections)
        self.evicted = 0
        self.verdict = ChecksumVerdict(checksums, offload_hosts=offload_hosts,
                                       min_share=offload_fraction)
        ports = DEFAULT_LIKELY_SERVER_PORTS if likely_server_ports is None else likely_server_ports
        likely = np.zeros(65536, dtype=np.uint8)
        likely[np.fromiter(ports, dtype=np.int64)] = 1
        if secret is None:
            secret = np.frombuffer(os.urandom(16), dtype=np.uint64)
        k0, k1 = (int(x) & 0xFFFFFFFFFFFFFFFF for x in secret)
        ns = 1_000_000_000
        self.scan_interval_ns = ns
        self._last_scan = -(1 << 62)
        self._engine = _track.Engine(k0, k1, int(attempt_delay * ns), int(close_delay * ns),
                                     int(idle_timeout * ns), likely,
                                     np.ascontiguousarray(TRANSITIONS), loss=bool(loss))

    @property
    def loss(self) -> bool:
        """Whether the loss analysis runs (the ``loss`` option)."""
        return self._engine.loss

    @property
    def next_id(self) -> int:
        """The id the next new connection gets (ids count from 0)."""
        return self._engine.next_id

    @next_id.setter
    def next_id(self, value: int) -> None:
        self._engine.next_id = int(value)

    def min_live_id(self) -> int:
        """Every connection with a smaller id has finished."""
        return self._engine.min_live_id()

    @property
    def live(self) -> int:
        """Connections currently held."""
        return self._engine.live

    def memory_bytes(self) -> int:
        """Bytes held by connection records and the flow table."""
        return self._engine.memory_bytes()

    @property
    def checksums(self) -> str:
        return self.verdict.mode

    def offload_hosts(self) -> list:
        """Senders currently treated as offloading checksums (16-byte rows)."""
        return [bytes(r) for r in self.verdict.offload_rows()]

    def update(self, segments: Segments) -> Connections:
        """Track one batch (in capture order); returns the connections that
        finished.  Sets ``segments["conn"]`` (connection index)."""
        return _finish(self.update_columns(segments))

    def flush(self) -> Connections:
        """Finish and return every connection still held."""
        return _finish(self.flush_columns())

    def update_columns(self, segments: Segments) -> dict:
        """As ``update``, but the finished connections come as the kernel's
        columns (ns timestamps, per-side (n, 2) arrays, ``history`` as bytes),
        which the report folds without building the public table."""
        seg = segments
        n = len(seg)
        for name in ("src", "dst"):
            if seg[name].shape != (n, 16):
                raise ValueError(f"column {name!r} must be (n, 16) address rows")
        conn = np.empty(n, dtype=np.int64)
        loss = self._loss_columns(seg) if self.loss else {}
        if n:
            c = lambda name, dt: np.ascontiguousarray(seg[name], dtype=dt)  # noqa: E731
            status = self._engine.process(
                c("ts_ns", np.int64), c("src", np.uint8), c("dst", np.uint8),
                c("sport", np.uint16), c("dport", np.uint16), c("seq", np.uint32),
                c("ack", np.uint32), c("flags", np.uint16), c("payload_len", np.uint32),
                c("window", np.uint16), c("mss", np.int32), c("wscale", np.int16),
                c("sack_perm", np.uint8), c("tsval", np.int64), c("ip_version", np.uint8),
                c("flow_key", np.uint64), self.verdict.dropped(seg), _payload_cut(seg), conn,
                **loss)
            if status != 0:
                raise MemoryError("connection tracker: out of memory")
        segments["conn"] = conn
        for name in SEGMENT_LOSS_COLUMNS:
            if name in loss:
                segments[name] = loss[name]
        # Expired connections are found by a scan of every live record, so
        # scan at most once per second of capture time.  When a connection
        # is emitted does not change what is emitted: a later segment of an
        # expired connection starts a new one either way.
        now = self._engine.now
        if now - self._last_scan >= self.scan_interval_ns:
            self._last_scan = now
            if self._engine.expire(now) != 0:
                raise MemoryError("connection tracker: out of memory")
        if self.max_connections is not None and self._engine.live > self.max_connections:
            status, evicted = self._engine.evict(self.max_connections)
            if status != 0:
                raise MemoryError("connection tracker: out of memory")
            self.evicted += int(evicted)
        return self._take_done()

    def flush_columns(self) -> dict:
        """As ``flush``, as kernel columns (see ``update_columns``)."""
        if self._engine.finish_all() != 0:
            raise MemoryError("connection tracker: out of memory")
        return self._take_done()

    def _take_done(self) -> dict:
        """Kernel columns of the finished connections, their loss columns
        (``LOSS_COLUMNS``) named."""
        k = self._engine.take_done()
        if "loss_counts" in k:
            k.update(loss_columns(k.pop("loss_counts"), k.pop("loss_seconds"), k.pop("ttfb")))
        return k

    @staticmethod
    def _loss_columns(seg: Segments) -> dict:
        """The loss analysis's inputs beyond the tracker's own and its
        per-segment outputs, as keyword arguments of the kernel's process."""
        n = len(seg)
        out = {"analysis": np.empty(n, np.uint32), "ack_rtt": np.empty(n, np.float64),
               "bytes_in_flight": np.empty(n, np.int64), "dup_ack_num": np.empty(n, np.uint32)}
        if "opt_status" in seg:
            out["opt_status"] = np.ascontiguousarray(seg["opt_status"], dtype=np.uint8)
        if (seg.data is not None and all(k in seg for k in ("sack_blocks", "_l3_off",
                                                              "_l3_caplen", "_l4_off"))):
            c = lambda name, dt: np.ascontiguousarray(seg[name], dtype=dt)  # noqa: E731
            out.update(sack_blocks=c("sack_blocks", np.uint8),
                       data=np.frombuffer(seg.data, dtype=np.uint8),
                       l3_off=c("_l3_off", np.int64), l3_caplen=c("_l3_caplen", np.uint32),
                       l4_off=c("_l4_off", np.int64), hdr_len=c("hdr_len", np.uint8))
        return out


def _payload_cut(seg: Segments) -> np.ndarray:
    """1 where a segment's payload was not captured in full (snap length);
    rows without a captured length (0: built by hand, not parsed) count as whole."""
    n = len(seg)
    if not n or "_l3_caplen" not in seg or "_l4_off" not in seg or "_l3_off" not in seg:
        return np.zeros(n, dtype=np.uint8)
    headers = (np.asarray(seg["_l4_off"], np.int64) - np.asarray(seg["_l3_off"], np.int64)
               + np.asarray(seg["hdr_len"], np.int64))
    caplen = np.asarray(seg["_l3_caplen"], np.int64)
    cut = (caplen > 0) & (caplen - headers < np.asarray(seg["payload_len"], np.int64))
    return np.ascontiguousarray(cut, dtype=np.uint8)


def track(segments: Segments, **options) -> Connections:
    """Track every connection of ``segments`` (in capture order) and return
    one row per connection, row i being connection i; sets
    ``segments["conn"]``.  Options as for ``Tracker``."""
    t = Tracker(**options)
    out = Connections.concat([t.update(segments), t.flush()])
    order = np.argsort(out["_conn"], kind="stable")
    return out[order]


# -- from kernel columns to the public table ------------------------------

def _uids(flow_key: np.ndarray, first_ts: np.ndarray, as_bytes: bool = False) -> np.ndarray:
    """'C' + 17 base62 digits from (flow_key, first timestamp): the same
    connection gets the same uid in every run and on every machine."""
    out = np.empty((len(flow_key), 18), dtype=np.uint8)
    _track.uid_bytes(np.ascontiguousarray(flow_key, dtype=np.uint64),
                     np.ascontiguousarray(first_ts, dtype=np.int64), out)
    uid = out.view("S18").reshape(-1)
    return uid if as_bytes else uid.astype("U18")


CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH",
               "SHR", "OTH")
_CONN_STATE_ORDER = ("REJ", "RSTRH", "RSTR", "RSTOS0", "OTH", "RSTO", "SF", "SH", "S2", "SHR",
                     "S3", "S0", "S1")


def _rstos0_history(history: np.ndarray) -> np.ndarray:
    """``^\\^?S[^HAFGIQ]*R.*$`` over a column of histories, vectorised: after
    an optional '^', an 'S', and then an 'R' before any of H A F G I Q."""
    h = np.ascontiguousarray(history.astype("S") if history.dtype.kind != "S" else history)
    n, width = len(h), h.dtype.itemsize
    if n == 0 or width < 2:
        return np.zeros(n, dtype=bool)
    c = h.view(np.uint8).reshape(n, width)
    start = (c[:, 0] == ord("^")).astype(np.intp)
    rows = np.arange(n)
    ok = c[rows, np.minimum(start, width - 1)] == ord("S")
    after = np.arange(width)[None, :] > start[:, None]
    r = (c == ord("R")) & after
    stop = np.isin(c, np.frombuffer(b"HAFGIQ", np.uint8)) & after
    first = np.argmax(r | stop, axis=1)
    return ok & r[rows, first]


def _conn_state(os_, rs, ob, rb, history, as_codes=False) -> np.ndarray:
    """Zeek's conn_state() (base/protocols/conn/main.zeek), vectorised: names,
    or indices into ``CONN_STATES`` with ``as_codes``."""
    o_inact = (os_ == Z_INACTIVE) | (os_ == Z_PARTIAL)
    r_inact = (rs == Z_INACTIVE) | (rs == Z_PARTIAL)
    r_reset = rs == Z_RESET
    o_reset = os_ == Z_RESET
    rej = r_reset & ((os_ == Z_SYN_SENT) | (os_ == Z_SYN_ACK_SENT) | (o_reset & (ob == 0) & (rb == 0)))
    rstos0 = np.zeros(len(os_), dtype=bool)
    cand = np.flatnonzero(~r_reset & o_reset & r_inact)
    if len(cand):
        rstos0[cand] = _rstos0_history(np.asarray(history)[cand])
    conds = [
        rej, r_reset & o_inact, r_reset,
        o_reset & r_inact & rstos0, o_reset & r_inact, o_reset,
        (rs == Z_CLOSED) & (os_ == Z_CLOSED),
        (os_ == Z_CLOSED) & r_inact, os_ == Z_CLOSED,
        (rs == Z_CLOSED) & o_inact, rs == Z_CLOSED,
        (os_ == Z_SYN_SENT) & (rs == Z_INACTIVE),
        (os_ == Z_ESTABLISHED) & (rs == Z_ESTABLISHED),
    ]
    # Codes index CONN_STATES; np.select over small ints, then one take.
    codes = np.select(conds, [CONN_STATES.index(n) for n in _CONN_STATE_ORDER],
                      default=CONN_STATES.index("OTH")).astype(np.int8)
    return codes if as_codes else np.array(CONN_STATES, dtype="U6")[codes]


_CLOSERS = ("", "orig", "resp")
_CLOSES = ("", "fin", "rst")


def _seconds_between(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    ok = (later >= 0) & (earlier >= 0)
    return np.where(ok, (later - earlier) / 1e9, np.nan)


def _finish(k: dict, text_bytes: bool = False) -> Connections:
    """The Connections table of the tracker's kernel columns.  With
    ``text_bytes`` the text columns come also as bytes (hidden ``_b_<name>``
    columns), which the text writers take without converting."""
    n = len(k["_conn"])
    history = k["history"].astype("U")
    zs, rfc = k["zstate"], k["rfc"]
    nbytes, opts = k["bytes"], k["opts"]
    rfc_names = np.array(RFC_STATES, dtype="U12")
    state = _conn_state(zs[:, 0], zs[:, 1], nbytes[:, 0], nbytes[:, 1], history, as_codes=True)
    closer = k["closer"].astype(np.intp) + 1
    close = k["close"].astype(np.intp)
    uid = _uids(k["flow_key"], k["first_ts"], as_bytes=True)
    ts = lambda a: np.where(a >= 0, a / 1e9, np.nan)  # noqa: E731
    both = (opts[:, 0] & 16 != 0) & (opts[:, 1] & 16 != 0)
    cols = {
        "uid": uid.astype("U18"),
        "ts": k["first_ts"] / 1e9,
        "duration": (k["last_ts"] - k["first_ts"]) / 1e9,
        "orig_h": k["orig_h"], "orig_p": k["orig_p"],
        "resp_h": k["resp_h"], "resp_p": k["resp_p"],
        "orig_pkts": k["pkts"][:, 0].copy(), "resp_pkts": k["pkts"][:, 1].copy(),
        "orig_bytes": nbytes[:, 0].copy(), "resp_bytes": nbytes[:, 1].copy(),
        "conn_state": np.array(CONN_STATES, dtype="U6")[state],
        "history": history,
        "orig_state": rfc_names[rfc[:, 0]], "resp_state": rfc_names[rfc[:, 1]],
        "syn_ts": ts(k["syn_ts"]), "synack_ts": ts(k["synack_ts"]), "ack_ts": ts(k["ack_ts"]),
        "syn_synack": _seconds_between(k["synack_ts"], k["hs_last_syn"]),
        "synack_ack": _seconds_between(k["ack_ts"], k["hs_last_synack"]),
        # Wireshark's iRTT (tcp.analysis.initial_rtt) runs from the last SYN
        # before the SYN-ACK, not the first: retransmitted SYNs do not count.
        # The connect time from the first SYN is ack_ts - syn_ts.
        "handshake_rtt": _seconds_between(k["ack_ts"], np.where(k["ack_ts"] >= 0, k["hs_last_syn"], -1)),
        "orig_isn": k["isn"][:, 0].copy(), "resp_isn": k["isn"][:, 1].copy(),
        "orig_mss": k["mss"][:, 0].copy(), "resp_mss": k["mss"][:, 1].copy(),
        "orig_wscale": k["wscale"][:, 0].copy(), "resp_wscale": k["wscale"][:, 1].copy(),
        "sack_ok": both & (opts[:, 0] & 1 != 0) & (opts[:, 1] & 1 != 0),
        "ts_ok": both & (opts[:, 0] & 2 != 0) & (opts[:, 1] & 2 != 0),
        # RFC 3168: ECE+CWR on the SYN, ECE without CWR on the SYN-ACK.
        "ecn_ok": both & (opts[:, 0] & 12 == 12) & (opts[:, 1] & 12 == 4),
        "syn_count": k["syn_count"], "synack_count": k["synack_count"],
        "tfo_data": k["tfo_data"],
        "closer": np.array(_CLOSERS, dtype="U4")[closer],
        "close": np.array(_CLOSES, dtype="U3")[close],
        "missed_bytes": k["missed_bytes"],
        **{name: k[name] for name in LOSS_COLUMNS if name in k},
        "_conn": k["_conn"], "ip_version": k["ip_version"], "flow_key": k["flow_key"],
        "ts_ns": k["first_ts"],
    }
    assert list(cols)[:len(CONNECTION_COLUMNS)] == CONNECTION_COLUMNS
    if n == 0:
        return Connections.empty()
    if text_bytes:
        rfc_bytes = np.array(RFC_STATES, dtype="S12")
        cols.update(_b_uid=uid, _b_history=k["history"],
                    _b_conn_state=np.array(CONN_STATES, dtype="S6")[state],
                    _b_orig_state=rfc_bytes[rfc[:, 0]], _b_resp_state=rfc_bytes[rfc[:, 1]],
                    _b_closer=np.array(_CLOSERS, dtype="S4")[closer],
                    _b_close=np.array(_CLOSES, dtype="S3")[close])
    return Connections(cols)
