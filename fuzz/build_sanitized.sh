#!/usr/bin/env bash
# Build the fastseg extensions with AddressSanitizer + UndefinedBehaviorSanitizer
# and libFuzzer coverage instrumentation, in a scratch copy (the source tree is
# left untouched).  Usage: fuzz/build_sanitized.sh [DEST] [SRC_ROOT]
#   DEST      scratch directory (default /tmp/fastseg-fuzzbuild); the package
#             ends up in DEST/src (put it first on PYTHONPATH)
#   SRC_ROOT  the checkout to build (default: this repository)
# Needs clang and its compiler-rt (apt-get install clang libclang-rt-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-/tmp/fastseg-fuzzbuild}
src_root=${2:-$here}
rm -rf "$dest"
mkdir -p "$dest/src"
cp "$src_root/setup.py" "$src_root/pyproject.toml" "$dest/"
cp -r "$src_root/src/fastseg" "$dest/src/"
find "$dest/src" -name '*.so' -delete
# Cython-generated C next to a .pyx is stale build output: regenerate it
for pyx in "$dest"/src/fastseg/*.pyx; do rm -f "${pyx%.pyx}.c"; done
cd "$dest"
# setup.py's FASTSEG_SANITIZE=1 adds -O1 -g -fsanitize=address,undefined
# -fno-sanitize-recover=undefined; CFLAGS adds libFuzzer's coverage counters so
# the fuzzer is guided by the C code too.  The shared objects are not linked
# against a sanitizer runtime: the harness preloads atheris' asan_with_fuzzer.so.
export FASTSEG_SANITIZE=1
export CC=clang
export LDSHARED="clang -shared"
export CFLAGS="-fsanitize=fuzzer-no-link -fno-sanitize=function,vptr"
export LDFLAGS=""
python3 setup.py build_ext --inplace -q
ls src/fastseg/*.so >/dev/null
echo "sanitized build in $dest/src"
