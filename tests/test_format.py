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


# -- addresses: the C formatter against Python's ipaddress ---------------------
import ipaddress  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

_GROUP = st.one_of(st.just(0), st.just(0), st.integers(0, 0xFFFF), st.integers(0, 0xF))


@st.composite
def _ipv6(draw):
    groups = draw(st.lists(_GROUP, min_size=8, max_size=8))
    return b"".join(g.to_bytes(2, "big") for g in groups)


def _expected(raw: bytes, version: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(raw[12:]))
    return str(ipaddress.IPv6Address(raw))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(_ipv6(), st.just(6)),
    st.tuples(st.binary(min_size=4, max_size=4).map(lambda b: bytes(10) + b"\xff\xff" + b),
              st.just(4))), min_size=1, max_size=40))
def test_addresses_match_ipaddress(rows):
    addrs = np.frombuffer(b"".join(r for r, _ in rows), np.uint8).reshape(-1, 16)
    version = np.array([v for _, v in rows], np.uint8)
    want = [_expected(r, v) for r, v in rows]
    assert list(_format.address_text(addrs, version)) == want
    assert [b.decode() for b in _format.address_bytes(addrs, version)] == want


def test_addresses_fixed_vectors():
    # RFC 5952 section 4: the longest zero run is compressed, the first of
    # equal runs, never a single zero group; lower-case hex, no leading zeros
    texts = ["2001:db8::1", "2001:db8:0:1:1:1:1:1", "2001:0:0:1::1", "2001:db8::1:0:0:1",
             "::", "::1", "1::", "fe80::abcd", "0.0.0.0", "255.255.255.255", "10.0.0.1"]
    from fastseg import parse_addresses
    addrs = parse_addresses(texts)
    version = np.array([4 if "." in t else 6 for t in texts], np.uint8)
    assert list(_format.address_text(addrs, version)) == texts
    assert list(_format.address_text(np.zeros((0, 16), np.uint8), np.zeros(0, np.uint8))) == []
    with pytest.raises(ValueError):
        _format.address_bytes(np.zeros((2, 16), np.uint8), np.zeros(3, np.uint8))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=50))
def test_float_repr_is_pythons_repr(values):
    got = _format.float_repr(np.array(values, dtype=np.float64))
    assert [g.decode() for g in got] == [repr(float(v)) for v in values]


def test_float_repr_vectors():
    values = [0.0, -0.0, 1e-05, 0.0001, 9.999e-05, 1e16, 1e15, 123456789012345678.0, 0.1, 0.3,
              4294967296.0, 4294967295.999999, 1796678678.478281, 5e-324, -1.5e-320,
              1.7976931348623157e308, float("inf"), -float("inf")]
    got = [g.decode() for g in _format.float_repr(np.array(values))]
    assert got == [repr(v) for v in values]
    assert got[:3] == ["0.0", "-0.0", "1e-05"] and got[12] == "1796678678.478281"


def test_unsigned_64_bit_column():
    values = np.array([0, 1, 2**63, 2**64 - 1, 12345678901234567890], dtype=np.uint64)
    text = _format.format_rows([("uint", values, 0, None)]).decode()
    assert text.splitlines() == [str(int(v)) for v in values]
