#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks for byol-align, then the npm dependencies
# (which builds the libtorch addon). Run as root, or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

# libtorch-dev: the C++ library the addon links. python3-torch: PyTorch for the reference
# fixtures and the PyTorch side of the benchmarks. dataset-fashion-mnist: the bundled data set.
# libopenblas0-openmp: Debian's libtorch calls BLAS through libblas.so.3, which is otherwise the
# reference BLAS (6 GFLOP/s on a 1024³ matmul here); OpenBLAS built for OpenMP, like libtorch,
# takes over that alternative (about 100 GFLOP/s per core, bench/RESULTS.md). chromium: the
# headless browser the report test opens report.html in (driven by playwright-core, never a
# downloaded browser); fonts-dejavu-core: the font the report's figures are drawn with.
# python3-pil: images for python/byol_align_export.py's encode_image (and its test).
# espeak-ng: speaks the icon captions for the audio modality (npm run data:speech).
# python3-torchvision: the reference ResNets of the pretrained image towers' tests (scripts/fixtures/resnet_fixture.py).
# libgloo-dev: the Gloo headers the addon's data-parallel training (native/distributed.cc) compiles
# against; libtorch already links Debian's libgloo0 of the same version.
packages=(libtorch-dev python3-torch python3-torchvision python3-pil libopenblas0-openmp dataset-fashion-mnist g++ make python3 chromium fonts-dejavu-core espeak-ng libgloo-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
npm ci
