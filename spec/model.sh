#!/bin/sh
# spec/model.sh — model-check src/chan.pml with spin (make model).
#
# Each check generates a verifier (spin -a), compiles it and runs an
# exhaustive search for one property of src/chan.pml, on unbuffered (cap 0)
# and buffered (cap 1) channels: it passes when spin finds no error.  Then
# each deliberately broken variant (a MUT_* mutation) is checked against
# the property that must catch it: it passes when spin does report an
# error, which shows that the property can fail.  Ends with the line
# "N passed, N failed".  On an unexpected result it prints spin's trail.
#
# Environment: BUILD (build dir, default build; work goes to $BUILD/model),
# CC (default cc), MODEL_JOBS (checks run at once, default: the CPU count).
BUILD=${BUILD:-build}
CC=${CC:-cc}
MODEL=src/chan.pml
DIR="$BUILD/model"

# name cap property mutation expect
CHECKS="
one_delivery        0 one_delivery      -                      pass
one_delivery        1 one_delivery      -                      pass
no_lost_wakeup      0 no_lost_wakeup    -                      pass
no_lost_wakeup      1 no_lost_wakeup    -                      pass
no_false_deadlock   0 no_false_deadlock -                      pass
no_false_deadlock   1 no_false_deadlock -                      pass
ready_parked        0 ready_parked      -                      pass
ready_parked        1 ready_parked      -                      pass
mut_no_claim        0 one_delivery      MUT_NO_CLAIM           caught
mut_dequeue_stops   0 no_lost_wakeup    MUT_DEQUEUE_STOPS      caught
mut_close_no_wake   0 no_lost_wakeup    MUT_CLOSE_NO_WAKE      caught
mut_lock_case_order 0 no_false_deadlock MUT_LOCK_CASE_ORDER    caught
mut_unlock_early    0 ready_parked      MUT_UNLOCK_BEFORE_PARK caught
mut_buf_no_refill   1 one_delivery      MUT_BUF_NO_REFILL      caught
"

# One check, in its own directory; writes its verdict to result there.
run_check() {
  name=$1 cap=$2 prop=$3 mut=$4 expect=$5
  d="$DIR/$name-cap$cap"
  rm -rf "$d" && mkdir -p "$d" && cp "$MODEL" "$d/chan.pml" || return 1
  defs="-DCAP=$cap -DCHECK_$prop"
  [ "$mut" != - ] && defs="$defs -D$mut"
  echo "$defs" > "$d/defs"
  # no_false_deadlock is spin's invalid end state check; the others are
  # assertions, with end states left unchecked (-E).
  endflag=-E
  [ "$prop" = no_false_deadlock ] && endflag=
  (
    cd "$d" &&
    spin $defs -a chan.pml > spin.log 2>&1 &&
    $CC -O0 -w -DSAFETY -o pan pan.c > cc.log 2>&1 &&
    ./pan $endflag -n -m10000 -w20 > pan.log 2>&1
  ) || { echo "FAIL could not build or run the verifier (see $d)" > "$d/result"; return 0; }
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.log")
  states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' "$d/pan.log")
  what=$(grep -m1 '^pan:1:' "$d/pan.log" | sed 's/^pan:1: //')
  if grep -q 'max search depth too small' "$d/pan.log"; then
    echo "FAIL search incomplete (depth limit)" > "$d/result"
  elif [ -z "$errors" ]; then
    echo "FAIL no verdict from pan (see $d/pan.log)" > "$d/result"
  elif [ "$expect" = pass ] && [ "$errors" -eq 0 ]; then
    echo "ok   $prop holds, cap $cap ($states states)" > "$d/result"
  elif [ "$expect" = caught ] && [ "$errors" -gt 0 ]; then
    echo "ok   $mut caught by $prop, cap $cap: $what" > "$d/result"
  elif [ "$expect" = pass ]; then
    echo "FAIL $prop violated, cap $cap: $what" > "$d/result"
  else
    echo "FAIL $mut not caught by $prop, cap $cap ($states states)" > "$d/result"
  fi
}

if [ "$1" = --check ]; then shift; run_check "$@"; exit 0; fi

if ! command -v spin > /dev/null 2>&1; then
  echo "spin not found (Debian package spin: make deps)"
  echo "0 passed, 1 failed"
  exit 1
fi
rm -rf "$DIR" && mkdir -p "$DIR" || exit 1
jobs=${MODEL_JOBS:-$(nproc 2> /dev/null || echo 2)}
echo "$CHECKS" | grep -v '^$' | xargs -P "$jobs" -L 1 sh "$0" --check

passed=0; failed=0
echo "$CHECKS" | grep -v '^$' | while read -r name cap prop mut expect; do
  d="$DIR/$name-cap$cap"
  result=$(cat "$d/result" 2> /dev/null || echo "FAIL no result")
  echo "$result"
  case "$result" in
    ok*) ;;
    *) grep -E '^pan:|errors:' "$d/pan.log" 2> /dev/null
       if [ -f "$d/chan.pml.trail" ]; then
         # the trail's steps, the first statement of each; in full:
         # cd $d && spin -t -p <defs> chan.pml
         echo "--- trail (cd $d && spin -t -p $(cat "$d/defs") chan.pml), one line a step:"
         (cd "$d" && spin -t -p $(cat defs) chan.pml |
            awk '/^spin:/ { print; next }
                 /^ *[0-9]+:[ \t]+proc/ && !/\(stuck:/ && $1 != last { last = $1; print }' |
            tail -n 60)
       fi ;;
  esac
done
for r in "$DIR"/*/result; do
  case "$(cat "$r")" in ok*) passed=$((passed + 1)) ;; *) failed=$((failed + 1)) ;; esac
done
total=$(echo "$CHECKS" | grep -vc '^$')
[ $((passed + failed)) -lt "$total" ] && failed=$((total - passed))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
