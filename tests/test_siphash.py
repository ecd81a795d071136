"""fastseg.siphash24 against the SipHash paper's vectors, a pure-Python
SipHash-2-4 written here, and siphashc."""
import numpy as np
import pytest

import fastseg
from fastseg import _cookies
from refs import siphash24 as py_siphash24

# The 64 SipHash-2-4 vectors of the paper's reference code (vectors.h):
# key 00 01 .. 0f, message 00 01 .. (i-1) for i = 0..63, output as the
# 8 little-endian bytes of the 64-bit hash.
PAPER_VECTORS = """
310e0edd47db6f72 fd67dc93c539f874 5a4fa9d909806c0d 2d7efbd796666785
b7877127e09427cf 8da699cd64557618 cee3fe586e46c9cb 37d1018bf50002ab
6224939a79f5f593 b0e4a90bdf82009e f3b9dd94c5bb5d7a a7ad6b22462fb3f4
fbe50e86bc8f1e75 903d84c02756ea14 eef27a8e90ca23f7 e545be4961ca29a1
db9bc2577fcc2a3f 9447be2cf5e99a69 9cd38d96f0b3c14b bd6179a71dc96dbb
98eea21af25cd6be c7673b2eb0cbf2d0 883ea3e395675393 c8ce5ccd8c030ca8
94af49f6c650adb8 eab8858ade92e1bc f315bb5bb835d817 adcf6b0763612e2f
a5c91da7acaa4dde 716595876650a2a6 28ef495c53a387ad 42c341d8fa92d832
ce7cf2722f512771 e37859f94623f3a7 381205bb1ab0e012 ae97a10fd434e015
b4a31508beff4d31 81396229f0907902 4d0cf49ee5d4dcca 5c73336a76d8bf9a
d0a704536ba93e0e 925958fcd6420cad a915c29bc8067318 952b79f3bc0aa6d4
f21df2e41d4535f9 87577519048f53a9 10a56cf5dfcd9adb eb75095ccd986cd0
51a9cb9ecba312e6 96afadfc2ce666c7 72fe52975a4364ee 5a1645b276d592a1
b274cb8ebf87870a 6f9bb4203de7b381 eaecb2a30b22a87f 9924a43cc1315724
bd838d3aafbf8db7 0b1a2a3265d51aea 135079a3231ce660 932b2846e4d70666
e1915f5cb1eca46c f325965ca16d629f 575ff28e60381be5 724506eb4c328a95
""".split()
PAPER_KEY = bytes(range(16))


def paper_message(i):
    return bytes(range(i))


def paper_expected(i):
    return int.from_bytes(bytes.fromhex(PAPER_VECTORS[i]), "little")


def test_paper_table_has_64_vectors():
    assert len(PAPER_VECTORS) == 64
    assert all(len(v) == 16 for v in PAPER_VECTORS)


def test_python_reference_reproduces_all_paper_vectors():
    for i in range(64):
        assert py_siphash24(PAPER_KEY, paper_message(i)) == paper_expected(i), i


def test_python_reference_agrees_with_siphashc():
    siphashc = pytest.importorskip("siphashc")
    rng = np.random.default_rng(7)
    for length in list(range(0, 80)) + [127, 128, 1500]:
        key = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        msg = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
        assert py_siphash24(key, msg) == siphashc.siphash(key, msg), length


def test_single_message_matches_all_paper_vectors():
    for i in range(64):
        assert fastseg.siphash24(PAPER_KEY, paper_message(i)) == paper_expected(i), i


def test_single_message_accepts_bytearray_and_memoryview():
    msg = paper_message(11)
    assert fastseg.siphash24(PAPER_KEY, bytearray(msg)) == paper_expected(11)
    assert fastseg.siphash24(bytearray(PAPER_KEY), memoryview(msg)) == paper_expected(11)


def test_bulk_rows_match_all_paper_vectors(lane_path):
    # Each length is hashed as 19 rows (two full blocks of lanes plus a
    # partial one), the paper's message in rows 0, 8 and 18.
    rng = np.random.default_rng(3)
    for i in range(64):
        rows = rng.integers(0, 256, (19, i), dtype=np.uint8)
        for r in (0, 8, 18):
            rows[r] = np.frombuffer(paper_message(i), dtype=np.uint8)
        out = fastseg.siphash24(PAPER_KEY, rows)
        assert out.dtype == np.uint64 and out.shape == (19,)
        for r in (0, 8, 18):
            assert int(out[r]) == paper_expected(i), (i, r)
        for r in (1, 9, 17):
            assert int(out[r]) == py_siphash24(PAPER_KEY, rows[r].tobytes()), (i, r)


def test_bulk_rows_match_python_reference_random_keys(lane_path):
    rng = np.random.default_rng(11)
    for length in (1, 8, 13, 16, 24, 40, 64, 100):
        key = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        rows = rng.integers(0, 256, (53, length), dtype=np.uint8)
        out = fastseg.siphash24(key, rows)
        assert [int(x) for x in out] == [py_siphash24(key, r.tobytes()) for r in rows]


def test_simd_and_scalar_paths_agree_on_200k_rows():
    if not _cookies.simd_available():
        pytest.skip("CPU without AVX2")
    rng = np.random.default_rng(5)
    key = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
    for length in (16, 40, 37):
        rows = rng.integers(0, 256, (200_003, length), dtype=np.uint8)
        previous = _cookies.set_simd(True)
        try:
            simd = fastseg.siphash24(key, rows)
            _cookies.set_simd(False)
            scalar = fastseg.siphash24(key, rows)
        finally:
            _cookies.set_simd(previous)
        np.testing.assert_array_equal(simd, scalar)


def test_bulk_rows_accept_non_contiguous_input():
    rng = np.random.default_rng(2)
    wide = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    view = wide[:, 5:21]
    out = fastseg.siphash24(PAPER_KEY, view)
    assert [int(x) for x in out] == [py_siphash24(PAPER_KEY, r.tobytes()) for r in view]


def test_empty_row_set_gives_empty_result():
    out = fastseg.siphash24(PAPER_KEY, np.empty((0, 16), dtype=np.uint8))
    assert out.shape == (0,) and out.dtype == np.uint64


def test_zero_length_rows_hash_the_empty_message():
    out = fastseg.siphash24(PAPER_KEY, np.empty((10, 0), dtype=np.uint8))
    assert (out == paper_expected(0)).all()


@pytest.mark.parametrize("key", [b"", b"x" * 15, b"x" * 17])
def test_key_must_be_16_bytes(key):
    with pytest.raises(ValueError, match="16 bytes"):
        fastseg.siphash24(key, b"abc")


@pytest.mark.parametrize("data", [np.zeros(16, np.uint8), np.zeros((4, 4), np.int32),
                                  np.zeros((2, 2, 2), np.uint8)])
def test_bulk_input_must_be_2d_uint8(data):
    with pytest.raises(ValueError, match="uint8"):
        fastseg.siphash24(PAPER_KEY, data)
