#!/usr/bin/env bash
# Build hiergen._core with AddressSanitizer + UndefinedBehaviorSanitizer in a throwaway build
# directory and run the sampler tests against it. Fails when the build, a test or a sanitizer
# fails (ASan aborts on its first report; UBSan is built with -fno-sanitize-recover).
#
# Uses the active Python (numpy, pybind11, pytest and hypothesis installed). GCC or Clang.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# HIERGEN_SANITIZE_BUILD keeps the build directory between runs (faster reruns).
BUILD="${HIERGEN_SANITIZE_BUILD:-$WORK/build}"

echo "-- configuring sanitizer build in $BUILD"
cmake -S . -B "$BUILD" -G "${CMAKE_GENERATOR:-Ninja}" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DHIERGEN_BUILD_PYTHON=ON -DHIERGEN_SANITIZE=ON \
  -DPython_EXECUTABLE="$(command -v "$PY")" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$BUILD" --target _core -j "${JOBS:-2}"

# A package tree holding the sources and the instrumented module, first on sys.path.
mkdir -p "$WORK/pkg"
cp -r python/hiergen "$WORK/pkg/hiergen"
rm -f "$WORK"/pkg/hiergen/_core*.so
cp "$BUILD"/_core*.so "$WORK/pkg/hiergen/"

CXX_BIN="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")"
ASAN_LIB="$("$CXX_BIN" -print-file-name=libasan.so)"
if [ ! -e "$ASAN_LIB" ]; then
  ASAN_LIB="$("$CXX_BIN" -print-file-name=libclang_rt.asan-x86_64.so)"
fi
[ -e "$ASAN_LIB" ] || { echo "sanitize.sh: cannot find the ASan runtime" >&2; exit 1; }

# libstdc++ must be loaded before ASan initialises, or its __cxa_throw interceptor finds no
# real __cxa_throw and aborts on the first C++ exception (Python itself does not link it).
STDCXX_LIB="$("$CXX_BIN" -print-file-name=libstdc++.so)"
export LD_PRELOAD="$ASAN_LIB${STDCXX_LIB:+ $STDCXX_LIB}"
# CPython and numpy are not instrumented: leak reports about them are noise.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
export PYTHONPATH="$WORK/pkg${PYTHONPATH:+:$PYTHONPATH}"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-default}"

# Run pytest on the instrumented module. An editable install of hiergen puts an import hook
# ahead of sys.path; drop it so that the package tree above is what gets imported.
"$PY" - "$WORK/pkg" <<'PYEOF'
import sys

sys.meta_path[:] = [f for f in sys.meta_path if "Redirecting" not in type(f).__name__]
import hiergen._core as core  # noqa: E402

if not core.__file__.startswith(sys.argv[1]):
    sys.exit(f"sanitize.sh: imported {core.__file__}, not the sanitizer build")
print("-- testing", core.__file__, flush=True)
import glob  # noqa: E402

import pytest  # noqa: E402

# Every test file that drives compiled code directly.
tests = sorted(
    glob.glob("tests/test_sampler*.py")
    + ["tests/test_context.py", "tests/test_context_groups.py", "tests/test_logits_sampler.py"]
)
# --capture=sys: a sanitizer report written to fd 2 reaches the log instead of being captured.
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--capture=sys", *tests]))
PYEOF
echo "-- sanitizer run passed"
