#!/bin/sh
# spec/run.sh — run the busted suite twice: under goroutine-lua (the main
# script is the main goroutine) and in module mode, `require "goroutine"`
# from a stock lua5.4.  Prints each run's summary and, last, the line
# "N passed, N failed" over both.
#
# Environment: BUILD (build dir, default build), LUA, BUSTED, SANITIZER
# (asan|tsan: module mode preloads the sanitizer runtime into lua5.4),
# SPECS (files or dirs, default spec), MODES (default "command module").
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
BUSTED=${BUSTED:-/usr/bin/busted}
SPECS=${SPECS:-spec}
MODES=${MODES:-command module}
export GOROUTINE_LUA="$BUILD/goroutine-lua"
export LUA_CPATH="$BUILD/?.so;;"
export LUA_PATH="./spec/?.lua;./lua/?.lua;;"

preload=""
case "$SANITIZER" in
  asan) preload="$(cc -print-file-name=libasan.so):$(cc -print-file-name=libubsan.so)"
        export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" ;;
  tsan) preload="$(cc -print-file-name=libtsan.so)" ;;
esac

# A sanitizer runtime must be the first library loaded: stock lua5.4 (and
# the specs that start it as a subprocess, through $LUA) get a wrapper that
# preloads it through the dynamic loader itself, not LD_PRELOAD, which every
# shell and program the specs start would inherit.
if [ -n "$preload" ]; then
  luabin=$(command -v "$LUA")
  loader=$(ldd "$luabin" | awk '/ld-linux/ { print $1 }')
  wrapper="$BUILD/lua5.4-$SANITIZER"
  printf '#!/bin/sh\nexec %s --preload "%s" %s "$@"\n' "$loader" "$preload" "$luabin" > "$wrapper"
  chmod +x "$wrapper"
  LUA="$wrapper"
fi
export LUA SANITIZER

passed=0; failed=0; status=0
summary() {  # $1: label, $2: log file
  line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?' "$2" | tail -1)
  if [ -z "$line" ]; then
    echo "$1: busted printed no summary (crashed?)"; failed=$((failed + 1)); status=1; return
  fi
  s=$(echo "$line" | sed -E 's/^([0-9]+) success.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failures?.*/\1/')
  e=$(echo "$line" | sed -E 's/.* ([0-9]+) errors?.*/\1/')
  passed=$((passed + s)); failed=$((failed + f + e))
  echo "$1: $line"
}

log=$(mktemp)
# The C tests own every byte they allocate: under asan, LeakSanitizer checks
# them (it stays off for the busted runs, where lua5.4 and busted keep what
# they allocate until exit).
for t in $CTESTS; do
  echo "== $t"
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" "$t" > "$log" 2>&1 || status=1
  tail -3 "$log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  if [ -z "$line" ]; then echo "$t: no summary"; failed=$((failed + 1)); status=1; continue; fi
  passed=$((passed + ${line%% passed*}))
  f=${line#*, }; failed=$((failed + ${f%% failed*}))
done

case " $MODES " in *" command "*)
  echo "== specs under $GOROUTINE_LUA"
  "$GOROUTINE_LUA" "$BUSTED" --output=utfTerminal $SPECS 2>&1 | tee "$log" || status=1
  summary "goroutine-lua" "$log" ;;
esac

case " $MODES " in *" module "*)
  echo "== specs in module mode: require \"goroutine\" from $LUA"
  "$LUA" "$BUSTED" --output=utfTerminal $SPECS 2>&1 | tee "$log" || status=1
  summary "module mode" "$log" ;;
esac
rm -f "$log"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
