"""The driver: blocks of connections in global time order, to a file or to memory."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .. import _consts
from .._synth import assemble
from .headers import PAT_LEN, PATTERN, headers, relink, templates
from .scenarios import KINDS, block, params, parse_mix, schedule, ID_BITS
from .truth import TRUTH_COLUMNS, truth_kind, truth_rows, write_truth
from .writer import file_header, open_output, records

_US = _consts.NS_PER_US
_SEC = _consts.NS_PER_SEC
LINKS = {"ethernet": _consts.LINKTYPE_ETHERNET, "vlan": _consts.LINKTYPE_ETHERNET,
         "raw": _consts.LINKTYPE_RAW, "sll": _consts.LINKTYPE_LINUX_SLL}

@dataclass
class SynthResult:
    """What ``generate`` wrote."""
    path: str
    packets: int
    connections: int
    truth: Optional[str]
    bytes: int
    seconds: float
    kinds: Dict[str, int] = field(default_factory=dict)
    bad_checksums: int = 0       # damaged copies written (``bad_checksum_fraction``)

    def summary(self) -> str:
        """One line for people: what was written and how fast."""
        rate = self.packets / self.seconds if self.seconds > 0 else 0.0
        line = (f"wrote {self.path}: {self.packets} packets, {self.connections} "
                f"connections, {self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s "
                f"({rate / 1e6:.2f} M packets/s)")
        return line + (f"; truth in {self.truth}" if self.truth else "")


@dataclass
class SynthPackets:
    """Packets in memory (link-layer frames in time order, ``linktype`` says which)
    and their ground truth."""
    data: np.ndarray         # uint8, all frames back to back
    offsets: np.ndarray      # int64, start of each frame in data
    caplens: np.ndarray      # int32, captured bytes per frame
    lens: np.ndarray         # int32, original length per frame
    ts_ns: np.ndarray        # int64, nanoseconds since the epoch
    truth: Dict[str, np.ndarray]
    linktype: int = _consts.LINKTYPE_ETHERNET

    def __len__(self):
        return len(self.offsets)


def _stream(connections, seed, mix, ipv6_fraction, start_ts, duration, nanosecond,
            bad_checksum_fraction, block_size, flood_bursts):
    """Yield (packet batch, truth batch) in global time order, block by block."""
    if not 0 <= connections <= 1 << ID_BITS:
        raise ValueError(f"connections must be within [0, {1 << ID_BITS}]")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if not 0 <= ipv6_fraction <= 1 or not 0 <= bad_checksum_fraction <= 1:
        raise ValueError("fractions must be within [0, 1]")
    if int(seed) != seed or seed < 0:
        raise ValueError("seed must be a non-negative integer")
    seed = int(seed)
    mix = parse_mix(mix)
    quantum = 1 if nanosecond else _US
    start_ns = int(round(float(start_ts) * _SEC))
    if duration is None:
        duration = max(10.0, connections / 2000.0)
    duration_ns = max(int(float(duration) * _SEC), 1)
    root = np.random.SeedSequence(seed)
    rng = np.random.default_rng(root.spawn(1)[0])
    kind, syn, burst, bursts = schedule(rng, connections, mix, start_ns, duration_ns,
                                         quantum, flood_bursts)
    carry = None
    for b, lo in enumerate(range(0, connections, block_size)):
        hi = min(lo + block_size, connections)
        brng = np.random.default_rng([seed & 0xffffffffffff, b + 1])
        gidx = np.arange(lo, hi, dtype=np.int64)
        p = params(brng, gidx, kind[lo:hi].astype(np.int64), syn[lo:hi], burst[lo:hi],
                    bursts, ipv6_fraction)
        pk, truth = block(brng, p, quantum, bad_checksum_fraction)
        head, hlen, order = headers(brng, pk, p, templates(p))
        pk = {k: v[order] for k, v in pk.items()}
        new = {"ts": pk["t"], "conn": gidx[pk["lc"]], "key": pk["key"], "head": head,
               "hlen": hlen, "plen": pk["plen"], "pay_off": pk["d"] * PAT_LEN}
        if carry is not None:
            new = {k: np.concatenate([carry[k], new[k]]) for k in new}
        order = np.lexsort((new["key"], new["conn"], new["ts"]))
        new = {k: v[order] for k, v in new.items()}
        bound = syn[hi] if hi < connections else np.iinfo(np.int64).max
        cut = int(np.searchsorted(new["ts"], bound, "left"))
        out = {k: v[:cut] for k, v in new.items()}
        carry = {k: v[cut:] for k, v in new.items()}
        yield out, (p, truth)
    if carry is not None and len(carry["ts"]):
        yield carry, None


def generate(path, connections: int = 10000, *, seed: int = 0, mix=None,
             ipv6_fraction: float = 0.2, start_ts: float = 1_700_000_000.0,
             duration: Optional[float] = None, format: str = "pcap",
             nanosecond: bool = False, truth: Optional[str] = None,
             bad_checksum_fraction: float = 0.0, snaplen: int = 262144,
             block_size: int = 20_000, flood_bursts: int = 2,
             link: str = "ethernet") -> SynthResult:
    """Write a synthetic capture (and optionally its ground truth).

    Parameters
    ----------
    path : output capture file (``.pcap`` or ``.pcapng`` per ``format``);
        gzip- or zstd-compressed when the name ends in ``.gz`` / ``.zst``.
    connections : number of TCP connections, spoofed flood SYNs included (each
        flood SYN is a connection of its own, as Wireshark and Zeek see it).
    seed : the same seed and arguments give byte-identical output.
    mix : weights per scenario kind (dict or ``"fin_orig=50,refused=5"``);
        default ``DEFAULT_MIX``.  ``scenarios()`` lists the kinds.
    ipv6_fraction : share of connections over IPv6.
    start_ts, duration : first-SYN times are spread over
        ``[start_ts, start_ts + duration)`` seconds (default duration:
        ``max(10, connections / 2000)``); later packets of a connection follow.
    format : ``"pcap"`` or ``"pcapng"``; ``nanosecond`` selects the nanosecond
        pcap magic / pcapng ``if_tsresol`` = 9 (else microseconds).
    truth : path of the ground-truth file, CSV, or JSON lines if it ends in
        ``.jsonl``/``.json``; one row per connection in first-SYN order (the
        order of Wireshark's tcp.stream), columns ``TRUTH_COLUMNS``: Zeek's
        ``conn_state``, ``closer`` (orig/resp/none) and ``close`` (fin/rst/none)
        of the first FIN or RST, SYN/SYN-ACK/FIN/RST counts, handshake times
        (``syn_ts``, ``handshake_rtt`` = first SYN to completing ACK as
        Wireshark's iRTT, ``syn_synack``, ``synack_ack``, ``duration``: seconds
        with nanosecond digits, empty/null when absent), payload bytes each way
        (distinct bytes, retransmissions counted once), TFO, the options the
        client offered (``mss``/``wscale`` -1 when absent) and the server's
        answer, packets per direction including ``bad_checksums`` copies,
        retransmitted data segments and keepalive probes (SYN retransmissions
        are in ``syn_count``).  A row is Wireshark's view (one tcp.stream);
        ``zeek_conns``, ``zeek_orig_pkts`` and ``zeek_resp_pkts`` are what
        ``fastseg.track`` (Zeek's rules) reports for it: an unanswered SYN
        retransmitted past tcp_attempt_delay (5 s) starts a new connection,
        and damaged copies never reach the state machine.
    bad_checksum_fraction : probability per non-handshake packet that the tap
        also saw a damaged copy of it (wrong TCP checksum) just before it; the
        truth counts them per connection (``bad_checksums``).
    snaplen : capture length limit per packet.
    block_size : connections generated at a time (bounds memory).
    flood_bursts : number of SYN-flood bursts the ``flood`` connections form.
    link : link layer: ``"ethernet"`` (default), ``"vlan"`` (Ethernet with one
        802.1Q tag), ``"raw"`` (LINKTYPE_RAW 101) or ``"sll"`` (Linux cooked
        capture, LINKTYPE_LINUX_SLL 113, taken on the client).
    """
    if format not in ("pcap", "pcapng"):
        raise ValueError(f"format must be 'pcap' or 'pcapng', not {format!r}")
    if snaplen < 64:
        raise ValueError("snaplen must be >= 64")
    if link not in LINKS:
        raise ValueError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    started = time.perf_counter()
    path = os.fspath(path)
    truth = os.fspath(truth) if truth else None
    npk = nbytes = bad = 0
    kinds = np.zeros(len(KINDS), np.int64)
    tf = open(truth, "w", encoding="ascii", newline="\n") if truth else None
    tkind = truth_kind(truth) if truth else None
    if tf is not None and tkind == "csv":
        tf.write(",".join(TRUTH_COLUMNS) + "\n")
    try:
        with open_output(path) as f:
            hdr = file_header(format, nanosecond, snaplen, LINKS[link])
            f.write(hdr)
            nbytes += len(hdr)
            for batch, blk in _stream(connections, seed, mix, ipv6_fraction, start_ts,
                                      duration, nanosecond, bad_checksum_fraction,
                                      block_size, flood_bursts):
                if len(batch["ts"]):
                    head, hlen = relink(batch["head"], batch["hlen"],
                                         batch["pay_off"] // PAT_LEN, link)
                    out = records(format, nanosecond, snaplen, head, hlen, batch["plen"],
                                  PATTERN, batch["pay_off"], batch["ts"])
                    f.write(memoryview(out))
                    nbytes += len(out)
                    npk += len(batch["ts"])
                if blk is not None:
                    p, t = blk
                    kinds += np.bincount(p.kind, minlength=len(KINDS))
                    bad += int(t["bad_checksums"].sum())
                    if tf is not None:
                        write_truth(tf, truth_rows(p, t), tkind)
    finally:
        if tf is not None:
            tf.close()
    return SynthResult(path=path, packets=npk, connections=connections,
                       truth=os.fspath(truth) if truth else None, bytes=nbytes,
                       seconds=time.perf_counter() - started,
                       kinds={k: int(c) for k, c in zip(KINDS, kinds) if c},
                       bad_checksums=bad)


DEMO_CONNECTIONS = 20_000
DEMO_BAD_CHECKSUM_FRACTION = 0.002


def demo(path, connections: int = DEMO_CONNECTIONS, *, seed: int = 0,
         truth: Optional[str] = None, **kwargs) -> SynthResult:
    """The capture behind ``fastseg demo``: every scenario kind of ``DEFAULT_MIX``
    (so every part of the analysis report has something to say), two SYN-flood
    bursts and a few damaged checksums (``DEMO_BAD_CHECKSUM_FRACTION`` of the
    packets unless overridden; ``demo_note`` says so in a sentence)."""
    kwargs.setdefault("bad_checksum_fraction", DEMO_BAD_CHECKSUM_FRACTION)
    return generate(path, connections, seed=seed, truth=truth, **kwargs)


def demo_note(result: SynthResult) -> str:
    """Why a synthetic capture has bad checksums, for the demo's output."""
    if not result.bad_checksums:
        return "the capture is synthetic and every checksum in it is correct"
    return (f"the capture is synthetic: {result.bad_checksums} of its {result.packets} packets "
            "are damaged copies with a wrong TCP checksum, put there on purpose next to "
            "their good twins (as a tap sees a frame the receiver then drops), so the "
            "checksum figures have something to show; the connections are unaffected")


def packets(connections: int = 1000, *, seed: int = 0, mix=None,
            ipv6_fraction: float = 0.2, start_ts: float = 1_700_000_000.0,
            duration: Optional[float] = None, nanosecond: bool = True,
            bad_checksum_fraction: float = 0.0, snaplen: int = 262144,
            block_size: int = 20_000, flood_bursts: int = 2,
            link: str = "ethernet") -> SynthPackets:
    """The same packets ``generate`` would write, as link-layer frames in memory.

    Returns ``SynthPackets`` (``data``, ``offsets``, ``caplens``, ``lens``,
    ``ts_ns``, ``truth`` as a dict of arrays with the ``TRUTH_COLUMNS`` names;
    its time columns are int64 nanoseconds, -1 when absent).  Timestamps are
    nanoseconds unless ``nanosecond=False`` (then whole microseconds, exactly
    as ``generate`` writes them by default)."""
    if link not in LINKS:
        raise ValueError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    datas, caps, lens, tss, truths = [], [], [], [], []
    for batch, blk in _stream(connections, seed, mix, ipv6_fraction, start_ts,
                              duration, nanosecond, bad_checksum_fraction,
                              block_size, flood_bursts):
        n = len(batch["ts"])
        if n:
            head, hlen = relink(batch["head"], batch["hlen"],
                                 batch["pay_off"] // PAT_LEN, link)
            orig = hlen.astype(np.int64) + batch["plen"]
            cap = np.minimum(orig, snaplen)
            head_cap = np.minimum(hlen, cap).astype(np.int32)
            out = np.empty(int(cap.sum()), np.uint8)
            assemble(out, np.zeros((n, 0), np.uint8), 0, head, head_cap,
                     PATTERN, batch["pay_off"].astype(np.int64),
                     (cap - head_cap).astype(np.int32), False)
            datas.append(out)
            caps.append(cap)
            lens.append(orig)
            tss.append(batch["ts"])
        if blk is not None:
            truths.append(truth_rows(*blk))
    caplens = np.concatenate(caps).astype(np.int32) if caps else np.zeros(0, np.int32)
    offsets = np.zeros(len(caplens), np.int64)
    if len(caplens):
        offsets[1:] = np.cumsum(caplens[:-1])
    truth = {k: np.concatenate([t[k] for t in truths]) for k in TRUTH_COLUMNS} \
        if truths else {k: np.zeros(0) for k in TRUTH_COLUMNS}
    return SynthPackets(
        data=np.concatenate(datas) if datas else np.zeros(0, np.uint8),
        offsets=offsets, caplens=caplens,
        lens=np.concatenate(lens).astype(np.int32) if lens else np.zeros(0, np.int32),
        ts_ns=np.concatenate(tss) if tss else np.zeros(0, np.int64), truth=truth,
        linktype=LINKS[link])
