"""The report as people read it: tables that hold only rows that mean something."""
import fastseg
from fastseg import _consts
from fastseg.teardowns import EPHEMERAL_RANGE
from segbuild import build


def _report(conns):
    """``conns``: (start time, client "addr:port", server "addr:port") of
    refused connections (SYN, RST-ACK)."""
    packets = []
    for t, client, server in conns:
        ends = {"client": client, "server": server}
        packets += [(t, ">", "S", 1000, 0, 0, ends), (t + 0.001, "<", "RA", 0, 1001, 0, ends)]
    packets.sort(key=lambda p: p[0])
    seg = build(packets)
    seg.stats.counts[_consts.OUT_TCP] = len(seg)
    return fastseg.analyze(seg)


def test_port_table_lists_busy_windows_with_their_start_and_no_idle_rows():
    t0 = 1_700_000_040.0          # a 60 s window starts at 1_700_000_040
    busy = [(t0 + i * 0.1, f"10.0.0.1:{20000 + i}", "10.0.0.9:443") for i in range(300)]
    quiet = [(t0 + i, f"10.0.1.{i}:30000", "10.0.0.9:443") for i in range(1, 20)]
    report = _report(busy + quiet)
    rows = report["teardowns"]["port_pressure"]
    assert [(r["client"], r["server"], r["port"], r["ports"], r["window_start"]) for r in rows] \
        == [("10.0.0.1", "10.0.0.9", 443, 300, t0)]
    assert rows[0]["fraction_of_range"] == round(300 / EPHEMERAL_RANGE, 6)
    text = report.render()
    table = text[text.index("Ephemeral ports"):].split("\n\n")[0].splitlines()
    assert len(table) == 4                                    # title, header, rule, one row
    assert "2023-11-14 22:14:00" in table[3] and "1.06%" in table[3]
    assert "0.00%" not in text


def test_port_line_without_busy_windows_gives_the_maximum_only():
    report = _report([(1_700_000_000.0 + i, f"10.0.1.{i}:30000", "10.0.0.9:80")
                      for i in range(1, 30)])
    rows = report["teardowns"]["port_pressure"]
    assert len(rows) == 1 and rows[0]["ports"] == 1
    lines = [l for l in report.render().splitlines() if "Ephemeral" in l]
    assert lines == ["Ephemeral ports: at most 1 per client -> server in one 60 s window "
                     "(10.0.1.1 -> 10.0.0.9:80, 0.00% of the range)"]
