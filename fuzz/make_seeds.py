"""Regenerate the seed corpus: ``python3 fuzz/make_seeds.py`` (deterministic)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import captures  # noqa: E402

if __name__ == "__main__":
    corpus = os.path.join(HERE, "corpus")
    captures.write_corpus(os.path.join(corpus, "capture"))
    captures.write_packet_corpus(os.path.join(corpus, "packets"))
    captures.write_kernel_corpus(os.path.join(corpus, "kernels"))
    print("seed corpus written to", corpus)
