import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir():
    return DATA


@pytest.fixture(scope="session")
def tshark():
    """Path to tshark; the oracle tests are skipped (and say so) without it."""
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark not found: install it (apt-get install tshark) to run the oracle tests")
    return path


@pytest.fixture(scope="session")
def tcpdump():
    path = shutil.which("tcpdump")
    if path is None:
        pytest.skip("tcpdump not found: install it (apt-get install tcpdump) to run the oracle tests")
    return path


@pytest.fixture(params=[True, False], ids=["simd", "scalar"])
def lane_path(request):
    """Run a test on the AVX2 path (when the CPU has it) and the scalar path."""
    from fastseg import _cookies

    if request.param and not _cookies.simd_available():
        pytest.skip("CPU without AVX2")
    previous = _cookies.set_simd(request.param)
    yield request.param
    _cookies.set_simd(previous)
