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
