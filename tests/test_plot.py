"""`fastseg plot` draws a real picture of the capture."""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def test_plot_writes_a_nontrivial_png(tmp_path):
    from fastseg import synth
    cap = tmp_path / "demo.pcap"
    synth.demo(str(cap), connections=4000, seed=2)
    out = tmp_path / "tcp.png"
    proc = subprocess.run([sys.executable, "-m", "fastseg", "plot", str(cap), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    import matplotlib.image as mpimg
    img = mpimg.imread(str(out))
    assert img.shape[0] > 500 and img.shape[1] > 900
    # four panels with data: far from a blank canvas, many distinct colours
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50
    assert (img[..., :3] < 0.9).mean() > 0.03
    assert list(tmp_path.iterdir()).count(out) == 1 and len(list(tmp_path.iterdir())) == 2
