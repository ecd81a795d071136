"""What every atheris harness shares: sanitizer-friendly start-up and the
import of fastseg (instrumented, so the Python faces guide the fuzzer too)."""
import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

with atheris.instrument_imports(include=["fastseg"]):
    import fastseg  # noqa: F401  (instrumented before anything else imports it)
    import fastseg.capture  # noqa: F401
    import fastseg.parse  # noqa: F401
    import fastseg.checksum  # noqa: F401
    import fastseg.track  # noqa: F401
    import fastseg.syncookies  # noqa: F401


def run(test_one_input):
    """Hand the harness to libFuzzer with the command line (libFuzzer flags,
    corpus directories or single inputs to replay)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
