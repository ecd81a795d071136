"""The mergeable aggregates of the report: exact where they say so, within
the stated error elsewhere, and the merge of two parts equal to the whole."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastseg import loss
from fastseg.aggregates import KeyTable, LogHistogram, ValueCounts, peaks_in_window


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 3000), max_size=300), min_size=1, max_size=6))
def test_value_counts_give_numpys_exact_percentiles_whatever_the_batches(batches):
    vc = ValueCounts()
    for b in batches:
        vc.add(np.array(b, np.int64))
    allv = np.array([v for b in batches for v in b], np.int64)
    got = vc.summary()
    assert got["samples"] == len(allv)
    if len(allv):
        p50, p90, p99 = np.percentile(allv, [50, 90, 99])
        assert (got["p50"], got["p90"], got["p99"]) == pytest.approx((p50, p90, p99), abs=1e-9)
        assert got["max"] == allv.max()
    else:
        assert got["p50"] is None


def test_value_counts_merge_is_the_counts_of_both():
    a, b = ValueCounts(), ValueCounts()
    a.add(np.array([1, 1, 5]))
    b.add(np.array([5, 7]))
    a.merge(b)
    values, counts = a.items()
    assert values.tolist() == [1, 5, 7] and counts.tolist() == [2, 2, 1]


def test_key_table_indexes_in_first_seen_order_and_keeps_first_rows():
    t = KeyTable(port=(np.uint16, ()))
    assert t.index(np.array([30, 10, 30], np.uint64), port=np.array([3, 1, 9])).tolist() == [0, 1, 0]
    assert t.index(np.array([20, 10], np.uint64), port=np.array([2, 8])).tolist() == [2, 1]
    assert t.keys.tolist() == [30, 10, 20] and t.cols["port"].tolist() == [3, 1, 2]


def _conns(rng, n):
    cols = {"resp_h": np.zeros((n, 16), np.uint8), "resp_p": rng.choice([80, 443, 22], n),
            "ip_version": np.full(n, 4, np.uint8)}
    cols["resp_h"][:, 10:12] = 0xFF
    cols["resp_h"][:, 15] = rng.integers(1, 4, n)
    for side in ("orig", "resp"):
        for name in loss._COUNTS:
            cols[f"{side}_{name}"] = rng.integers(0, 3, n) * (rng.random(n) < 0.3)
        cols[f"{side}_pkts"] = rng.integers(1, 50, n)
        cols[f"{side}_bytes"] = rng.integers(0, 5000, n) * (rng.random(n) < 0.9)
        cols[f"{side}_zero_window_time"] = rng.random(n) * (cols[f"{side}_zero_windows"] > 0)
        cols[f"{side}_rtt_min"] = np.where(rng.random(n) < 0.8, rng.random(n) / 10, np.nan)
    return cols


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 9)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def test_loss_report_of_two_parts_merged_is_the_report_of_the_whole():
    rng = np.random.default_rng(7)
    whole = _conns(rng, 3000)
    agg_whole = loss.LossAggregate()
    agg_whole.add(whole)
    first, second = loss.LossAggregate(), loss.LossAggregate()
    first.add({k: v[:1200] for k, v in whole.items()})
    second.add({k: v[1200:] for k, v in whole.items()})
    first.merge(second)
    # equal up to the order of float additions
    assert _rounded(first.report()) == _rounded(agg_whole.report())


def test_loss_report_quantiles_against_the_exact_ones():
    rng = np.random.default_rng(3)
    c = _conns(rng, 5000)
    rep = loss.loss_report(c)
    o, r = c["orig_rtt_min"], c["resp_rtt_min"]
    rtt = np.where(np.isnan(o) & np.isnan(r), np.nan, np.nan_to_num(o) + np.nan_to_num(r))
    rtt = rtt[np.isfinite(rtt)]
    assert rep["rtt"]["samples"] == len(rtt)
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        exact = np.percentile(rtt, q)
        assert abs(rep["rtt"][name] - exact) <= LogHistogram.RELATIVE_ERROR * exact * 1.0001
    assert rep["rtt"]["max"] == rtt.max()
    ff = c["orig_first_flight_bytes"][c["orig_first_flight_bytes"] > 0]
    assert rep["first_flight"]["orig"]["bytes"]["p90"] == pytest.approx(np.percentile(ff, 90))
    # per server: the busiest first, sums exact
    port = c["resp_p"]
    pkts = c["orig_pkts"] + c["resp_pkts"]
    for row in rep["per_server"]:
        mine = (port == row["port"]) & (c["resp_h"][:, 15] == int(row["server"].rsplit(".", 1)[1]))
        assert row["connections"] == mine.sum() and row["packets"] == pkts[mine].sum()
    rates = [row["retrans_rate"] for row in rep["per_server"]]
    assert rates == sorted(rates, reverse=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40).map(lambda v: v * 5.0)),
                max_size=40))
def test_peaks_in_window_against_counting_every_window(rows):
    group = np.array([g for g, _ in rows], np.int64)
    t = np.array([x for _, x in rows], np.float64)
    peaks, at = peaks_in_window(group, t, 60.0, 4)
    for g in range(4):
        mine = t[group == g]
        # intervals [x, x + 60) open at s: closes before opens at equal times
        level = [int(np.count_nonzero((mine <= s) & (mine + 60.0 > s))) for s in mine]
        want = max(level, default=0)
        assert peaks[g] == want
        if want:
            assert at[g] == min(s for s, n in zip(mine, level) if n == want)
        else:
            assert np.isnan(at[g])


def test_key_table_lookups_across_its_two_levels():
    rng = np.random.default_rng(5)
    table, seen = KeyTable(), {}
    for _ in range(40):
        keys = rng.integers(0, 20000, 700).astype(np.uint64)
        got = table.index(keys)
        for k, i in zip(keys.tolist(), got.tolist()):
            assert seen.setdefault(k, len(seen)) == i
    assert len(table) == len(seen) > 4096
