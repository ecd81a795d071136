"""Teardowns: FIN and RST closes, who closed, CLOSE-WAIT leaks, half-open
connections, TIME-WAIT holders and their peaks, ephemeral-port pressure and
4-tuple reuse, folded from finished connections and mergeable."""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .aggregates import (Chunks, DistinctValues, KeyTable, endpoint_key, mix64,
                         peaks_in_window, row_hash)
from .segments import format_addresses

__all__ = ["Teardowns", "MSL2", "EPHEMERAL_RANGE", "PORT_PRESSURE_MIN"]

MSL2 = 60.0                  # Linux TIME-WAIT length (TCP_TIMEWAIT_LEN)
EPHEMERAL_RANGE = 28232      # Linux default ip_local_port_range 32768-60999
PORT_PRESSURE_MIN = 0.01     # share of the range in one window that is worth a row
PORT_PRESSURE_ROWS = 10


def _ns_seconds(a: np.ndarray, missing: float) -> np.ndarray:
    """ns timestamps (-1 = none) as float seconds, ``missing`` for none."""
    out = a / 1e9
    out[a < 0] = missing
    return out


class Teardowns:
    """The teardowns section's counters and tables.  Kept per connection:
    its 4-tuple key (reuse), its client port in its (client, server,
    window) row (pressure), a TIME-WAIT's holder and start (peaks)."""

    def __init__(self, close_wait_threshold: float = 60.0):
        self.close_wait_threshold = close_wait_threshold
        self.n = 0
        self.count = dict.fromkeys(
            ("fin", "rst", "by_orig", "by_resp", "close_wait_leaks", "close_wait_open_at_end",
             "half_open", "held_by_orig", "held_by_resp"), 0)
        self.cw_pending = Chunks(fin_in=np.float64)
        # ephemeral ports: (client, server address:port, 2*MSL window) rows,
        # the distinct (row, client port) pairs, the distinct 4-tuples
        self.port_rows = KeyTable(orig_h=(np.uint8, (16,)), resp_h=(np.uint8, (16,)),
                                  resp_p=(np.uint16, ()), ver=(np.uint8, ()), win=(np.int64, ()),
                                  conn=(np.int64, ()))
        self.ports_used = DistinctValues()
        self.tuples = DistinctValues(np.uint64)
        # TIME-WAIT holders (servers by address:port, clients by address) and,
        # per TIME-WAIT, the holder's index and the time it began
        self.tw = {"server": KeyTable(addr=(np.uint8, (16,)), port=(np.uint16, ()),
                                      ver=(np.uint8, ())),
                   "client": KeyTable(addr=(np.uint8, (16,)), port=(np.uint16, ()),
                                      ver=(np.uint8, ()))}
        self.tw_rows = {who: Chunks(gid=np.int32, t=np.float64) for who in self.tw}

    def add(self, k: dict, completed: np.ndarray, history: np.ndarray, t_last: float) -> None:
        """Fold finished connections (the tracker's kernel columns);
        ``t_last``: the latest time seen so far (seconds)."""
        from .track import CLOSE_WAIT, TIME_WAIT
        cnt = self.count
        self.n += len(completed)
        close, closer, rfc = k["close"], k["closer"], k["rfc"]
        cnt["fin"] += int(np.count_nonzero(close == 1))
        cnt["rst"] += int(np.count_nonzero(close == 2))
        cnt["by_orig"] += int(np.count_nonzero(closer == 0))
        cnt["by_resp"] += int(np.count_nonzero(closer == 1))
        orig_fin = _ns_seconds(k["first_fin"][:, 0], np.inf)
        resp_fin = _ns_seconds(k["first_fin"][:, 1], np.inf)
        orig_last = _ns_seconds(k["last_seen"][:, 0], -np.inf)
        resp_last = _ns_seconds(k["last_seen"][:, 1], -np.inf)

        # CLOSE-WAIT: an endpoint received a FIN and sent none for too long.
        # Without the answering FIN the wait runs to the capture's end, which
        # is at least the latest time seen so far: decided now when that is
        # already long enough, else kept (one float) until the end.
        thr = self.close_wait_threshold
        both = np.isfinite(orig_fin) & np.isfinite(resp_fin)
        with np.errstate(invalid="ignore"):
            leak = both & ((resp_fin - orig_fin > thr) | (orig_fin - resp_fin > thr))
        one = np.isfinite(orig_fin) ^ np.isfinite(resp_fin)
        fin_in = np.where(np.isfinite(orig_fin), orig_fin, resp_fin)[one]
        sure = t_last - fin_in > thr
        cnt["close_wait_leaks"] += int(np.count_nonzero(leak)) + int(np.count_nonzero(sure))
        self.cw_pending.add(fin_in=fin_in[~sure])
        cnt["close_wait_open_at_end"] += int(np.count_nonzero(
            (rfc[:, 0] == CLOSE_WAIT) | (rfc[:, 1] == CLOSE_WAIT)))

        # half-open: established, never closed, and one side kept sending for
        # at least a second after the other side's last segment
        half_open = (completed & (close == 0) & (np.abs(orig_last - resp_last) >= 1.0)
                     & (history != b"") & np.isfinite(orig_last) & np.isfinite(resp_last)
                     & (np.minimum(k["pkts"][:, 0], k["pkts"][:, 1]) > 0))
        cnt["half_open"] += int(np.count_nonzero(half_open))

        # TIME-WAIT: held by the side that closed first; lasts 2*MSL from the
        # last FIN (or the connection's end)
        tw_orig = rfc[:, 0] == TIME_WAIT
        tw_resp = rfc[:, 1] == TIME_WAIT
        cnt["held_by_orig"] += int(np.count_nonzero(tw_orig))
        cnt["held_by_resp"] += int(np.count_nonzero(tw_resp))
        ts = k["first_ts"] / 1e9
        end = ts + (k["last_ts"] - k["first_ts"]) / 1e9
        fins = np.maximum(np.where(np.isfinite(orig_fin), orig_fin, -np.inf),
                          np.where(np.isfinite(resp_fin), resp_fin, -np.inf))
        tw_end = np.where(np.isfinite(fins), fins, end)
        ver = k["ip_version"]
        orig_h, resp_h = k["orig_h"], k["resp_h"]
        orig_p, resp_p = k["orig_p"], k["resp_p"]
        for who, held, addr, port in (("server", tw_resp, resp_h, resp_p),
                                      ("client", tw_orig, orig_h, np.zeros_like(orig_p))):
            if held.any():
                a, p, v = addr[held], port[held], ver[held]
                gid = self.tw[who].index(endpoint_key(a, p, v), addr=a, port=p, ver=v)
                self.tw_rows[who].add(gid=gid, t=tw_end[held])

        # ephemeral ports: distinct client ports toward one server address:port
        # within one 2*MSL window, and reuse of whole 4-tuples (64-bit keys)
        win = np.floor(ts / MSL2).astype(np.int64)
        oh, rh = row_hash(orig_h), row_hash(resp_h)
        dest = mix64(mix64(oh ^ rh * np.uint64(3)) ^ resp_p.astype(np.uint64))
        key = mix64(dest ^ win.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        row = self.port_rows.index(key, orig_h=orig_h, resp_h=resp_h, resp_p=resp_p, ver=ver,
                                   win=win, conn=k["_conn"])
        self.ports_used.add((row << 16) | orig_p.astype(np.int64))
        self.tuples.add(mix64(mix64(dest ^ oh) ^ orig_p.astype(np.uint64)))

    def merge(self, other: "Teardowns", offset: int) -> None:
        """Add ``other`` (another part of the capture), its connection ids
        renumbered from ``offset``."""
        self.n += other.n
        for name, value in other.count.items():
            self.count[name] += value
        self.cw_pending.extend(other.cw_pending)
        other.port_rows.cols["conn"] = other.port_rows.cols["conn"] + offset
        remap = self.port_rows.merge_index(other.port_rows)
        used = other.ports_used.values()
        self.ports_used.add((remap[used >> 16] << 16) | (used & 0xFFFF))
        self.tuples.merge(other.tuples)
        for who, table in self.tw.items():
            remap = table.merge_index(other.tw[who])
            rows = other.tw_rows[who]
            rows._parts["gid"] = [remap[p] for p in rows._parts["gid"]]
            self.tw_rows[who].extend(rows)

    def report(self, capture_end: Optional[float]) -> dict:
        """The ``teardowns`` section; ``capture_end``: the capture's last time."""
        cnt = self.count
        if capture_end is not None:
            # CLOSE-WAITs still open are leaks once the capture ran long enough
            pending = self.cw_pending.get("fin_in")
            cnt["close_wait_leaks"] += int(np.count_nonzero(capture_end - pending
                                                            > self.close_wait_threshold))
            self.cw_pending = Chunks(fin_in=np.float64)
        pressure = []
        rows = self.port_rows
        if len(rows):
            # Kept: the busiest rows using at least PORT_PRESSURE_MIN of the
            # range, else only the busiest one, so that its maximum is still
            # known; ties go to the row whose first connection came first.
            ports = np.bincount(self.ports_used.values() >> 16, minlength=len(rows))
            busiest = np.lexsort((rows.cols["conn"], -ports))
            busy = int(np.count_nonzero(ports >= PORT_PRESSURE_MIN * EPHEMERAL_RANGE))
            for r in busiest[:max(1, min(busy, PORT_PRESSURE_ROWS))]:
                v = rows.cols["ver"][r:r + 1]
                pressure.append({
                    "client": str(format_addresses(rows.cols["orig_h"][r:r + 1], v)[0]),
                    "server": str(format_addresses(rows.cols["resp_h"][r:r + 1], v)[0]),
                    "port": int(rows.cols["resp_p"][r]),
                    "window_start": float(rows.cols["win"][r] * MSL2),
                    "ports": int(ports[r]),
                    "fraction_of_range": round(float(ports[r]) / EPHEMERAL_RANGE, 6),
                })
        return {
            "fin": cnt["fin"], "rst": cnt["rst"], "by_orig": cnt["by_orig"],
            "by_resp": cnt["by_resp"], "close_wait_leaks": cnt["close_wait_leaks"],
            "close_wait_open_at_end": cnt["close_wait_open_at_end"],
            "half_open": cnt["half_open"],
            "time_wait": {
                "held_by_orig": cnt["held_by_orig"], "held_by_resp": cnt["held_by_resp"],
                "peak_per_server": self._peak_table("server", True),
                "peak_per_client": self._peak_table("client", False),
            },
            "port_pressure": pressure,
            "port_reuse": int(self.n - len(self.tuples)) if self.n else 0,
        }

    def _peak_table(self, who: str, with_port: bool) -> List[dict]:
        """The ten holders with the most TIME-WAITs at once (each lasts
        2*MSL), ties in first-seen order."""
        table, rows = self.tw[who], self.tw_rows[who]
        peaks, when = peaks_in_window(rows.get("gid"), rows.get("t"), MSL2, len(table))
        out = []
        for g in np.argsort(-peaks, kind="stable")[:10]:
            if peaks[g] == 0:
                break
            text = str(format_addresses(table.cols["addr"][g:g + 1], table.cols["ver"][g:g + 1])[0])
            item = {who: text, "peak": int(peaks[g]), "at": float(when[g])}
            if with_port:
                item["port"] = int(table.cols["port"][g])
            out.append(item)
        return out
