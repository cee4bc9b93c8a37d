#!/bin/sh
# Regenerates the tour's figures of measured data on this machine:
#   docs/tour/figures/ladder.svg   (cargo run --release --example ladder -- --svg ...)
#   docs/tour/figures/backends.svg (cargo run --release --example backends -- --svg ...)
# Usage: scripts/tour_figures.sh [extra ladder flags, e.g. --clients 10,100,1000]
# About a minute on 2 cores (the ladder's default is 9 rungs x 4 client counts,
# up to 5 s a cell). Both tables are printed as well; the figures' subtitles
# say the workload, and the chapters say where and when they were made.
set -eu
cd "$(dirname "$0")/.."
out=docs/tour/figures
mkdir -p "$out"
cargo build --release --quiet --example ladder --example backends
cargo run --release --quiet --example ladder -- --svg "$out/ladder.svg" "$@"
cargo run --release --quiet --example backends -- --svg "$out/backends.svg"
echo "machine: $(nproc) CPUs, $(uname -sr), $(date -u +%Y-%m-%d)"
