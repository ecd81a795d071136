#!/usr/bin/env bash
# CI fuzz step: build the extensions with ASan + UBSan + libFuzzer coverage in a
# scratch copy, then run every atheris harness for a fixed number of executions.
# Fails on any crash, sanitizer report, uncaught exception, accounting
# violation (pipeline.Violation), per-input hang (-timeout) or oversized
# allocation (-malloc_limit_mb), and when a harness outlives its time bound.
#
# Environment knobs:
#   FUZZ_RUNS_CAPTURE / FUZZ_RUNS_PACKETS / FUZZ_RUNS_KERNELS  executions per harness
#                                  (default 80000 / 70000 / 50000: 200k in total)
#   FUZZ_RUNS_C_CSUM / FUZZ_RUNS_C_SIPHASH   executions of the C drivers of the
#                                  header-only kernels (default 2000000 / 500000)
#   FUZZ_MAX_SECONDS    hard wall-clock bound per harness (default 1800)
#   FUZZ_INPUT_TIMEOUT  seconds one input may take before it counts as a hang (default 10)
#   FUZZ_BUILD_DIR      scratch build directory (default: a fresh mktemp -d)
#   FUZZ_SEED           libFuzzer -seed (default 1: reproducible CI runs)
#   FUZZ_SRC_ROOT       checkout to build (default: this repository)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${FUZZ_SRC_ROOT:-$(cd "$here/.." && pwd)}

runs_capture=${FUZZ_RUNS_CAPTURE:-80000}
runs_packets=${FUZZ_RUNS_PACKETS:-70000}
runs_kernels=${FUZZ_RUNS_KERNELS:-50000}
runs_c_csum=${FUZZ_RUNS_C_CSUM:-2000000}
runs_c_siphash=${FUZZ_RUNS_C_SIPHASH:-500000}
max_seconds=${FUZZ_MAX_SECONDS:-1800}
input_timeout=${FUZZ_INPUT_TIMEOUT:-10}
seed=${FUZZ_SEED:-1}

# -- tools: clang + compiler-rt for the build, atheris for the harnesses --------
if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a >/dev/null 2>&1; then
    echo "fuzz: installing clang and compiler-rt"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev) >/dev/null \
        || { echo "fuzz: cannot install clang" >&2; exit 1; }
fi
if ! python3 -c "import atheris" 2>/dev/null; then
    echo "fuzz: installing atheris"
    python3 -m pip install -q atheris || { echo "fuzz: cannot install atheris" >&2; exit 1; }
fi
python3 -c "import siphashc" 2>/dev/null || python3 -m pip install -q siphashc

work=${FUZZ_BUILD_DIR:-$(mktemp -d /tmp/fastseg-fuzz.XXXXXX)}
mkdir -p "$work"
echo "fuzz: sanitized build in $work/build"
if ! "$here/build_sanitized.sh" "$work/build" "$root" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    echo "fuzz: sanitized build failed" >&2
    exit 1
fi

asan_rt="$(python3 -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
[ -f "$asan_rt" ] || { echo "fuzz: $asan_rt not found" >&2; exit 1; }

export PYTHONPATH="$work/build/src:$here"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:allocator_may_return_null=0:handle_abort=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONHASHSEED=0

status=0
total_runs=0
start_all=$(date +%s)
run_one() {   # name runs corpus-subdir [command...]
    local name=$1 runs=$2 sub=$3
    shift 3
    local cmd=("$@")
    [ ${#cmd[@]} -eq 0 ] && cmd=(env LD_PRELOAD="$asan_rt" python3 "$here/fuzz_$name.py")
    local corpus="$work/corpus-$name" artifacts="$work/artifacts-$name/" log="$work/$name.log"
    rm -rf "$corpus" "$artifacts"; mkdir -p "$corpus" "$artifacts"
    [ -d "$here/corpus/$sub" ] && cp "$here/corpus/$sub"/* "$corpus/"
    local t0=$(date +%s)
    timeout --kill-after=30 "$max_seconds" "${cmd[@]}" "$corpus" \
        -runs="$runs" -seed="$seed" -timeout="$input_timeout" -max_len=65536 \
        -rss_limit_mb=3072 -malloc_limit_mb=512 -print_final_stats=1 \
        -artifact_prefix="$artifacts" >"$log" 2>&1
    local rc=$?
    local t1=$(date +%s)
    local done_runs
    done_runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*')
    done_runs=${done_runs:-0}
    total_runs=$((total_runs + done_runs))
    local bad=""
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && bad="time bound of ${max_seconds}s exceeded"
    [ -z "$bad" ] && [ "$rc" -ne 0 ] && bad="exit status $rc"
    if grep -qE 'ERROR: AddressSanitizer|ERROR: libFuzzer|runtime error:|Uncaught Python exception|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$log"; then
        bad="${bad:+$bad; }sanitizer/libFuzzer report"
    fi
    [ -z "$bad" ] && [ "$done_runs" -lt "$runs" ] && bad="only $done_runs of $runs executions"
    if [ -n "$bad" ]; then
        status=1
        echo "fuzz: FAIL fuzz_$name: $bad ($((t1 - t0)) s)"
        grep -nE -A40 'ERROR:|runtime error:|Uncaught Python exception|Violation' "$log" | head -80
        tail -20 "$log"
        ls -l "$artifacts" 2>/dev/null
    else
        echo "fuzz: ok   fuzz_$name: $done_runs executions in $((t1 - t0)) s"
    fi
}

# the header-only C kernels, straight under libFuzzer (millions of runs a minute)
for drv in csum siphash; do
    if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -I"$work/build/src/fastseg" "$here/c/fuzz_$drv.c" -o "$work/c_$drv" 2>>"$work/build.log"; then
        tail -20 "$work/build.log" >&2
        echo "fuzz: FAIL building c/fuzz_$drv.c"
        status=1
    fi
done
[ -x "$work/c_csum" ] && run_one c_csum "$runs_c_csum" none "$work/c_csum"
[ -x "$work/c_siphash" ] && run_one c_siphash "$runs_c_siphash" none "$work/c_siphash"
run_one capture "$runs_capture" capture
run_one packets "$runs_packets" packets
run_one kernels "$runs_kernels" kernels
echo "fuzz: $total_runs executions in $(( $(date +%s) - start_all )) s, status $status"
[ -z "${FUZZ_BUILD_DIR:-}" ] && [ "$status" -eq 0 ] && rm -rf "$work"
exit $status
