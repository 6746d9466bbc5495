#!/bin/sh
# spec/faults/point.sh SCRIPT N COUNT — one run of the sweep (run.sh): the
# script with allocations N .. N+COUNT-1 failing (COUNT 0: every one from
# N on).  Prints "pass STATUS", or "FAIL ..." and the run's stderr.  A run
# passes if it ends within FAULTS_TIMEOUT seconds with no sanitizer report
# and either status 0 and the script's "ok" (it checked that what it
# received was sent, and once), or status 1 and "not enough memory".
s=$1 n=$2 count=$3
[ "$count" -eq 0 ] && count=1000000000
f=$FAULTS_WORK/$(basename "$s").$n.$count
case $s in *.lua) cmd="$BIN $s" ;; *) cmd=$s ;; esac   # a script, or a C host
GR_FAIL_AT=$n GR_FAIL_COUNT=$count timeout -k 5 "$FAULTS_TIMEOUT" $cmd > "$f.out" 2> "$f.err"
rc=$? why=
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="hang (timeout)"
elif grep -qE 'Sanitizer|runtime error:' "$f.err"; then why="sanitizer report (status $rc)"
elif [ $rc -eq 0 ]; then grep -q '^ok' "$f.out" || why="status 0 without ok"
elif [ $rc -eq 1 ]; then grep -q 'not enough memory' "$f.err" || why="status 1, not a memory error"
else why="status $rc"
fi
if [ -z "$why" ]; then
  echo "pass $rc"
  rm -f "$f.out" "$f.err"
else
  echo "FAIL $s GR_FAIL_AT=$n GR_FAIL_COUNT=$3: $why"
  sed 's/^/    /' "$f.err" | head -40
fi
