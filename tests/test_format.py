"""The C text-row kernel against Python's own formatting of the same values."""
import numpy as np
import pytest

from fastseg import _format


def _python_rows(ints, floats, texts, unset):
    rows = []
    for i, f, t, u in zip(ints.tolist(), floats.tolist(), texts.tolist(), unset.tolist()):
        fs = "-" if (u or f != f) else f"{f:.6f}"
        rows.append("\t".join([str(i), fs, t.decode() if t else "", "tcp"]) + "\n")
    return "".join(rows)


@pytest.mark.parametrize("seed", range(5))
def test_rows_match_python_formatting(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    ints = rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64)
    ints[:4] = [0, -1, -2**63, 2**63 - 1]
    floats = rng.uniform(-1e9, 2e9, n) * rng.choice([1e-9, 1e-3, 1, 1e3], n)
    floats[:3] = [np.nan, 0.0, 0.0000005]
    texts = np.array([bytes(rng.integers(97, 123, rng.integers(0, 12)).astype(np.uint8))
                      for _ in range(n)], dtype="S12")
    unset = rng.random(n) < 0.2
    got = _format.format_rows([("int", ints, 0, None), ("float", floats, 6, unset),
                               ("bytes", texts, 0, None), ("const", b"tcp", 0, None)])
    assert got.decode() == _python_rows(ints, floats, texts, unset)


def test_unset_text_and_separators():
    got = _format.format_rows([("bytes", np.array([b"ab", b""], "S2"), 0,
                                np.array([False, True])), ("int", np.array([7, 8]), 0, None)],
                              sep=b",", unset=b"", end=b"\r\n")
    assert got == b"ab,7\r\n,8\r\n"


def test_bad_columns_are_refused():
    with pytest.raises(ValueError):
        _format.format_rows([("int", np.arange(3), 0, None), ("int", np.arange(4), 0, None)])
    with pytest.raises(ValueError):
        _format.format_rows([("float", np.array([1e40]), 6, None)])
    with pytest.raises(ValueError):
        _format.format_rows([("text", np.arange(3), 0, None)])
    assert _format.format_rows([]) == b""


def _reference(table, fmt):
    """What the csv and json modules write for the same rows."""
    import csv
    import io
    import json

    from fastseg.output import text_columns
    cols = text_columns(table)
    names = list(cols)
    rows = list(zip(*(cols[c] for c in names)))
    if fmt == "jsonl":
        return "".join(json.dumps(dict(zip(names, r)), separators=(",", ":")) + "\n" for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    w.writerows(["" if v is None else v for v in r] for r in rows)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("name", ["lo_conv.pcap", "synth_frag.pcap", "veth_sack.pcap"])
def test_segment_and_connection_text_equals_the_csv_and_json_modules(name, fmt):
    from pathlib import Path

    import fastseg
    from fastseg.output import format_table
    seg = fastseg.read_segments(str(Path(__file__).parent / "data" / name))
    conns = fastseg.track(seg)
    for table in (seg, conns):
        assert format_table(table, fmt, header=True) == _reference(table, fmt)
