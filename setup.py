"""Build the Cython core.

Every ``src/fastseg/*.pyx`` is one extension module.  Environment switches:

* ``FASTSEG_NATIVE=1``   add ``-march=native`` (not portable: local builds only)
* ``FASTSEG_SANITIZE=1`` AddressSanitizer + UndefinedBehaviorSanitizer, -O1 -g
* ``FASTSEG_DEBUG=1``    -O0 -g and Cython bounds checks on
* ``FASTSEG_ANNOTATE=1`` write Cython's HTML annotation next to each .pyx
"""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _flag(name):
    return os.environ.get(name, "") not in ("", "0", "false", "no")


debug = _flag("FASTSEG_DEBUG")
sanitize = _flag("FASTSEG_SANITIZE")

compile_args = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function",
                "-Wno-unreachable-code"]
link_args = []
if sys.platform == "win32":
    compile_args = ["/O2"]
if _flag("FASTSEG_NATIVE"):
    compile_args.append("-march=native")
if sanitize:
    compile_args = ["-O1", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    link_args += ["-fsanitize=address,undefined"]
if debug:
    compile_args = ["-O0", "-g"]

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": debug,
    "embedsignature": True,
}

extensions = [
    Extension(
        "fastseg." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[np.get_include(), "src/fastseg"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(glob.glob("src/fastseg/*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=_flag("FASTSEG_ANNOTATE"),
        include_path=["src"],
    ),
)
