"""Pictures of a capture's TCP behaviour (needs the ``plot`` extra: matplotlib)."""
from __future__ import annotations

import numpy as np

from .analyze import _secs, _strs, analyze
from .teardowns import MSL2


def plot_capture(path: str, output: str, *, report=None) -> None:
    """Write a PNG with six panels: handshake RTT histogram (log x),
    connection states, SYN rate vs completed handshakes over time,
    concurrent TIME-WAIT over time, retransmissions over time and the path
    RTT from data ACKs."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("plotting needs matplotlib: pip install 'fastseg[plot]'") from exc
    from .output import atomic_output

    report = report if report is not None else analyze(path, keep_connections=True)
    conns = report.connections
    d = report.to_dict()
    fig, axes = plt.subplots(3, 2, figsize=(13, 12.5))
    fig.suptitle(f"fastseg: {path}")

    ax = axes[0][0]
    rtt = np.empty(0) if conns is None else np.asarray(conns["handshake_rtt"], dtype=float)
    rtt = rtt[np.isfinite(rtt) & (rtt > 0)]
    if len(rtt):
        bins = np.logspace(np.log10(rtt.min()), np.log10(rtt.max()) + 1e-9, 50)
        ax.hist(rtt * 1e3, bins=bins * 1e3, color="#3b75af")
        ax.set_xscale("log")
    ax.set_title(f"Handshake RTT (SYN -> ACK), n={len(rtt)}")
    ax.set_xlabel("ms")
    ax.set_ylabel("connections")

    ax = axes[0][1]
    states = d["connections"]["by_state"]
    ax.bar(list(states), list(states.values()), color="#519e3e")
    ax.set_title("conn_state")
    ax.set_ylabel("connections")

    ax = axes[1][0]
    syn_ts = report.series.get("syn_ts", np.empty(0))
    done = np.empty(0) if conns is None else _secs(conns["ack_ts"])
    done = done[np.isfinite(done)]
    if len(syn_ts):
        t0 = float(syn_ts.min())
        t1 = max(float(syn_ts.max()), float(done.max()) if len(done) else t0)
        width = max((t1 - t0) / 200, 1e-3)
        bins = np.arange(t0, t1 + width, width)
        s, _ = np.histogram(syn_ts, bins)
        c, _ = np.histogram(done, bins)
        ax.plot(bins[:-1] - t0, s / width, label="SYNs/s", color="#c03d3e")
        ax.plot(bins[:-1] - t0, c / width, label="completed handshakes/s", color="#3b75af")
        ax.legend()
    for f in d["syn_flood"]:
        if len(syn_ts):
            ax.axvspan(f["start"] - float(syn_ts.min()), f["end"] - float(syn_ts.min()),
                       color="#c03d3e", alpha=0.12)
    ax.set_title("SYN rate vs completed handshakes")
    ax.set_xlabel("seconds from first SYN")

    ax = axes[1][1]
    if conns is not None and len(conns):
        tw = (_strs(conns["orig_state"]) == "TIME-WAIT") | (_strs(conns["resp_state"]) == "TIME-WAIT")
        end = _secs(conns["ts"]) + np.nan_to_num(np.asarray(conns["duration"], dtype=float))
        start = end[tw]
        if len(start):
            t = np.concatenate([start, start + MSL2])
            delta = np.concatenate([np.ones(len(start)), -np.ones(len(start))])
            order = np.argsort(t, kind="stable")
            level = np.cumsum(delta[order])
            ax.step(t[order] - t.min(), level, where="post", color="#8d69b8")
    ax.set_title("Concurrent TIME-WAIT (2*MSL = 60 s)")
    ax.set_xlabel("seconds")
    ax = axes[2][0]
    rts = np.asarray(report.series.get("retrans_ts", np.empty(0)), dtype=float)
    cap = d["capture"]
    if len(rts) and cap.get("start") is not None:
        t0, t1 = cap["start"], max(cap["end"], cap["start"] + 1e-3)
        width = max((t1 - t0) / 200, 1e-3)
        bins = np.arange(t0, t1 + width, width)
        counts, _ = np.histogram(rts, bins=bins)
        ax.plot(bins[:-1] - t0, counts / width, color="#c03d3e")
    ax.set_title(f"Retransmissions (tcp.analysis.retransmission), n={len(rts)}")
    ax.set_xlabel("seconds from the first packet")
    ax.set_ylabel("segments/s")

    ax = axes[2][1]
    path_rtt = np.empty(0)
    if conns is not None and "orig_rtt_min" in conns:
        o = np.asarray(conns["orig_rtt_min"], dtype=float)
        r = np.asarray(conns["resp_rtt_min"], dtype=float)
        path_rtt = np.nan_to_num(o) + np.nan_to_num(r)
        path_rtt = path_rtt[~(np.isnan(o) & np.isnan(r)) & (path_rtt > 0)]
    if len(path_rtt):
        lo_, hi_ = np.log10(path_rtt.min()), np.log10(path_rtt.max())
        bins = np.logspace(lo_ - 0.05, max(hi_, lo_) + 0.05, 50)
        ax.hist(path_rtt * 1e3, bins=bins * 1e3, color="#e08a2c")
        ax.set_xscale("log")
    ax.set_title(f"Path RTT from data ACKs, n={len(path_rtt)}")
    ax.set_xlabel("ms")
    ax.set_ylabel("connections")

    fig.tight_layout()
    with atomic_output(output, binary=True) as fh:
        fig.savefig(fh, format="png", dpi=90)
    plt.close(fig)
