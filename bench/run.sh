#!/bin/sh
# bench/run.sh — build the Go twins (build/bench/gobench), then run every
# workload under goroutine-lua and Go alternately (bench/run.lua) and print
# the table.  Run from anywhere; `make bench` builds goroutine-lua first.
# Environment: BENCH_RUNS, BENCH_PROCS, BENCH_ONLY, BENCH_TIMEOUT,
# BENCH_MEM_KB, BENCH_W7_LEAVES, BENCH_W7_SMALL (see bench/run.lua),
# BUILD (build), GO (go), LUA (lua5.4).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
GO=${GO:-go}
LUA=${LUA:-lua5.4}
root=$(pwd)

if [ ! -x "$BUILD/goroutine-lua" ]; then
  echo "bench: $BUILD/goroutine-lua is missing: run make first" >&2
  exit 1
fi
if ! command -v "$GO" >/dev/null 2>&1; then
  echo "bench: no Go toolchain ('$GO'): apt-get install golang-go (as root), or set GO" >&2
  exit 1
fi

# Everything Go writes stays under build/: no module downloads (no
# dependencies), no cache in $HOME.
mkdir -p "$BUILD/bench"
(cd bench/go && GOCACHE="$root/$BUILD/bench/gocache" GOPATH="$root/$BUILD/bench/gopath" \
  GOFLAGS= GOPROXY=off GOTOOLCHAIN=local "$GO" build -o "$root/$BUILD/bench/gobench" .)

export BUILD GO
exec "$LUA" bench/run.lua
