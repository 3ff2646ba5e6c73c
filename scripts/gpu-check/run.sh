#!/usr/bin/env bash
# Issue 19's GPU check, run on a lent GPU machine from the project root with .gpu/ carried
# (scripts/gpu-check/prepare.sh fills it here; README: Building against another libtorch):
#   1. builds the addon with g++ against the PyTorch there (the sources, defines and flags of
#      binding.gyp; libtorch found by native/find-libtorch.cjs, as npm ci finds it);
#   2. prints `byol-align --version` (libtorch, CUDA, devices);
#   3. runs `bench align` in fp32 and bf16 beside PyTorch on CUDA (on the CPU where there is no
#      GPU), then the test files whose tests change with a GPU, then the rest of the suite in the
#      time left.
# Everything happens in a scratch copy of the tree, so the checkout's build/, dist/ and
# node_modules are never touched. Logs go to $OUT (the device tool's), else ./gpu-check-out.
# Settings: GPU_CHECK_SECONDS (the whole run, default 420), GPU_CHECK_BENCH_SECONDS (each bench
# run, default 150: byol-align trains twice, streaming and on batches decoded beforehand),
# GPU_CHECK_CUDA_TESTS_SECONDS (default 180), GPU_CHECK_PRECISIONS (default "fp32 bf16"),
# GPU_CHECK_BENCH_FLAGS (the bench's device and precision flags, default
# "--device {device} --precision {precision}", filled in: cuda where the addon sees a GPU).
set -uo pipefail
root=$(pwd)
G=$root/.gpu
OUT=${OUT:-$root/gpu-check-out}
mkdir -p "$OUT"
: > "$OUT/build.log"
budget=${GPU_CHECK_SECONDS:-420}
summary=$OUT/summary.txt
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
left() { echo $((budget - SECONDS)); }
cap() { local n=$(($(left) - 10)); echo $((n < $1 ? (n > 1 ? n : 1) : $1)); } # min(N, time left - 10 s), at least 1
[ -f "$G/node.xz" ] || { say "no .gpu/node.xz: run scripts/gpu-check/prepare.sh and carry .gpu"; exit 1; }

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
tar -c --exclude=./.git --exclude=./.gpu --exclude=./node_modules --exclude=./dist --exclude=./build \
  --exclude=./data --exclude=./runs --exclude=./tmp --exclude=./gpu-check-out . | tar -x -C "$W"
mkdir -p "$W/bin" "$W/build/Release" "$W/data/icons" "$W/obj"
xz -dc "$G/node.xz" > "$W/bin/node" && chmod +x "$W/bin/node"
export PATH=$W/bin:$PATH
cd "$W"
tar -xJf "$G/dist.tar.xz" && tar -xJf "$G/modules.tar.xz" && tar -xJf "$G/icons.tar.xz" -C data/icons ||
  { say "unpacking .gpu failed"; exit 1; }
# The python3 with PyTorch there (tests' reference fixtures and the bench's PyTorch side).
for python in python3 /usr/bin/python3; do
  [ -z "${BYOL_ALIGN_PYTHON:-}" ] && "$python" -c 'import torch' 2> /dev/null && BYOL_ALIGN_PYTHON=$(command -v "$python")
done
export BYOL_ALIGN_PYTHON=${BYOL_ALIGN_PYTHON:-python3}
say "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
say "node $(node --version); $BYOL_ALIGN_PYTHON: $("$BYOL_ALIGN_PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -1)"

# 1. The addon, as binding.gyp builds it (its <!(...) values computed here).
started=$SECONDS
read -r -a sources < <(node -p "JSON.parse(require('fs').readFileSync('binding.gyp','utf8').replace(/^\s*#.*$/gm,'')).targets[0].sources.join(' ')")
defines=$(node -p "JSON.parse(require('fs').readFileSync('binding.gyp','utf8').replace(/^\s*#.*$/gm,'')).targets[0].defines.filter((d) => !d.includes('<!')).map((d) => '-D' + d).join(' ')")
cflags=$(node -p "JSON.parse(require('fs').readFileSync('binding.gyp','utf8').replace(/^\s*#.*$/gm,'')).targets[0].cflags_cc.join(' ')")
torch_inc=$(node native/find-libtorch.cjs include | sed 's/\([^ ]*\)/-I\1/g')
torch_libs=$(node native/find-libtorch.cjs libs)
abi=$(node native/find-libtorch.cjs abi)
# binding.gyp's condition: torch.distributed's Gloo backend where its headers are found.
[ "$(node native/find-libtorch.cjs gloo)" = 1 ] && defines="$defines -DUSE_C10D_GLOO"
# PyTorch's newest headers refuse C++17 (their guard in ATen/ATen.h asks for C++20): build as they ask.
grep -qs 'C++20 or later' "$(node native/find-libtorch.cjs include | cut -d' ' -f1)/ATen/ATen.h" && cflags=${cflags/-std=c++17/-std=c++20}
say "libtorch: $(node native/find-libtorch.cjs lib), _GLIBCXX_USE_CXX11_ABI=$abi, $cflags, links: $torch_libs"
for src in "${sources[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n; done # one compiler a core
  # shellcheck disable=SC2086 # the flags are lists
  timeout 400 g++ -c -fPIC -pthread $cflags $defines -D_GLIBCXX_USE_CXX11_ABI="$abi" -DBUILDING_NODE_EXTENSION \
    -DNODE_GYP_MODULE_NAME=byol_align_native -I"$G/inc" $torch_inc "$src" -o "obj/$(basename "$src" .cc).o" >> "$OUT/build.log" 2>&1 &
done
wait
# shellcheck disable=SC2086
[ "$(ls obj/*.o | wc -l)" = "${#sources[@]}" ] && g++ -shared -pthread -o build/Release/byol_align_native.node obj/*.o $torch_libs >> "$OUT/build.log" 2>&1
if [ ! -f build/Release/byol_align_native.node ]; then
  say "build: FAILED after $((SECONDS - started)) s; the compiler's first errors (all in build.log):"
  grep -m 20 -E 'error|Error' "$OUT/build.log" | tee -a "$summary"
  exit 1
fi
say "build: ok in $((SECONDS - started)) s"

# 2. What the CLI reports.
say "$(node dist/src/cli/main.js --version 2>&1)"
cuda=$(node -e "import('./dist/src/index.js').then((m) => console.log(m.cuda.deviceCount()))" 2>&1)
say "CUDA devices seen by the addon: $cuda"
device=cpu
[ "$cuda" -gt 0 ] 2>/dev/null && device=cuda

tests() { # LOG SECONDS FILE...: the files one at a time, as npm test runs them; counts into the summary
  local log=$1 limit=$2
  shift 2
  timeout "$limit" node --test --test-concurrency=1 --test-reporter=tap "$@" > "$log" 2>&1
  local rc=$?
  say "$(basename "$log"): exit $rc$([ $rc = 124 ] && echo ' (stopped at its time limit)'); $(grep -E '^# (tests|pass|fail|skipped|cancelled) ' "$log" | tr -d '#' | tr '\n' ',')"
  grep -E '^not ok ' "$log" | head -20 | tee -a "$summary"
  grep -q "Cannot find package '@lancedb" "$log" && say "  (some failures need @lancedb/lancedb, which is not carried)"
}

# 3a. The alignment step beside PyTorch's, on the device, per precision.
threads=$(nproc)
for precision in ${GPU_CHECK_PRECISIONS:-fp32 bf16}; do
  flags=${GPU_CHECK_BENCH_FLAGS-"--device {device} --precision {precision}"}
  flags=${flags//\{device\}/$device}
  flags=${flags//\{precision\}/$precision}
  say "bench align --threads $threads $flags:"
  # shellcheck disable=SC2086
  timeout "$(cap "${GPU_CHECK_BENCH_SECONDS:-150}")" node dist/bench/run.js align --threads "$threads" $flags > "$OUT/bench-$precision.log" 2>&1
  say "  exit $?"
  grep -E 'pairs/s|ratio|data wait|loss at step|rror' "$OUT/bench-$precision.log" | head -n 8 | sed 's/^/  /' | tee -a "$summary"
done

# 3b. The test files whose tests change where a GPU is seen (CUDA tests that skip without one,
# CPU-only ones that skip with one, devices drawn by the fuzzer).
mapfile -t cuda_tests < <(grep -lE "isAvailable\(\)|deviceCount\(\)|'cuda:0'" dist/tests/*.test.js)
tests "$OUT/tests-cuda.log" "$(cap "${GPU_CHECK_CUDA_TESTS_SECONDS:-180}")" "${cuda_tests[@]}"

# 3c. The rest of the suite in the time left, less what needs things that do not travel:
# @lancedb/lancedb (index, serve), npm (package), Chromium (report, serve), the icon sets and
# @resvg of the devDependencies (iconify, icons_other), espeak-ng (speech_dataset).
mapfile -t rest < <(grep -LE "isAvailable\(\)|deviceCount\(\)|'cuda:0'" dist/tests/*.test.js |
  grep -vE '/(index|serve|package|report|iconify|icons_other|speech_dataset)\.test\.js$')
if [ "$(left)" -gt 30 ]; then
  tests "$OUT/tests-rest.log" "$(cap "$budget")" "${rest[@]}"
else
  say "tests-rest: not run (no time left of GPU_CHECK_SECONDS=$budget)"
fi
say "total: $SECONDS s"
