#!/bin/sh
# spec/faults/run.sh — the allocation failure sweep (make faults).
#
# For each script here (and the C host, host.c), count its allocations (GR_FAIL_AT=0), then run it
# again and again with allocations failing from the N-th (point.sh checks
# each run), in three passes:
#   1   the N-th allocation alone fails: every N of the first FAULTS_FIRST,
#       then evenly spaced N up to the total, FAULTS_MAX runs in all;
#   2   the N-th and the next fail, the same points: Lua retries a failed
#       allocation once after an emergency collection, so this is what makes
#       Lua's own allocations (through the runtime's allocators) fail too;
#   all every allocation from the N-th fails (memory is gone for good):
#       FAULTS_ALL evenly spaced N.
# Prints "N passed, N failed", one per run.  BUILD: the faults build.
BUILD=${BUILD:-build/faults}
FAULTS_FIRST=${FAULTS_FIRST:-200}
FAULTS_MAX=${FAULTS_MAX:-600}
FAULTS_ALL=${FAULTS_ALL:-30}
FAULTS_TIMEOUT=${FAULTS_TIMEOUT:-30}
JOBS=${JOBS:-2}
SCRIPTS=${SCRIPTS:-$(ls spec/faults/*.lua) $BUILD/fault_host}
FAULTS_WORK=$(mktemp -d)
trap 'rm -rf "$FAULTS_WORK"' EXIT
export BIN="${BIN:-$BUILD/goroutine-lua}" FAULTS_TIMEOUT FAULTS_WORK
export GOROUTINE_MAXPROCS=${GOROUTINE_MAXPROCS:-2}
export ASAN_OPTIONS="detect_leaks=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:exitcode=87"
export LSAN_OPTIONS="exitcode=88"

# points N FIRST MAX: 1..FIRST (at most N), then evenly spaced up to N, MAX in all.
points() {
  awk -v n="$1" -v first="$2" -v max="$3" 'BEGIN {
    last = n < first ? n : first
    for (i = 1; i <= last; i++) print i
    if (n > last && max > last) {
      step = (n - last) / (max - last); if (step < 1) step = 1
      for (x = last + step; x <= n + 0.5; x += step) print int(x + 0.5)
    }
  }' | uniq
}

for s in $SCRIPTS; do
  case $s in *.lua) cmd="$BIN $s" ;; *) cmd=$s ;; esac
  n=$(GR_FAIL_AT=0 $cmd 2>&1 >/dev/null | sed -n 's/^gr-faults: \([0-9]*\) allocations$/\1/p')
  if [ -z "$n" ]; then
    echo "FAIL $s: the counting run failed" | tee -a "$FAULTS_WORK/results"; continue
  fi
  k1=$(points "$n" "$FAULTS_FIRST" "$FAULTS_MAX" | tee "$FAULTS_WORK/pts" | wc -l)
  for p in $(cat "$FAULTS_WORK/pts"); do echo "$s $p 1"; echo "$s $p 2"; done >> "$FAULTS_WORK/runs"
  kall=$(points "$n" 0 "$FAULTS_ALL" | tee "$FAULTS_WORK/pts" | wc -l)
  for p in $(cat "$FAULTS_WORK/pts"); do echo "$s $p 0"; done >> "$FAULTS_WORK/runs"
  echo "$s: $n allocations; $k1 points failing one, $k1 failing two, $kall failing all from there"
done

xargs -P "$JOBS" -n 3 sh spec/faults/point.sh < "$FAULTS_WORK/runs" >> "$FAULTS_WORK/results"

grep -v '^pass' "$FAULTS_WORK/results"
passed=$(grep -c '^pass' "$FAULTS_WORK/results")
failed=$(grep -c '^FAIL' "$FAULTS_WORK/results")
echo "runs: $(wc -l < "$FAULTS_WORK/runs"); completed (status 0): $(grep -c '^pass 0$' "$FAULTS_WORK/results");" \
     "ended by \"not enough memory\" (status 1): $(grep -c '^pass 1$' "$FAULTS_WORK/results")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
