#!/bin/bash
# `run --calibrate` under mpirun (runner/run/cmd_run.c, calibrate_costs): the
# two workers time themselves at once and rank 0 scales the estimates by their
# mean, so a dry run prints one calibration line naming 2 ranks and an
# estimate that is the uncalibrated one divided by its factor; nothing is
# written.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/cli/sizing.yaml # long tasks: the fixed per-task seconds (not scaled) are negligible
$MPIRUN 3 "$BIN" run "$SPEC" --dry-run --set output="$TMP/r.h5" > "$TMP/plain" 2>&1 || { cat "$TMP/plain"; fail "dry run"; }
$MPIRUN 3 "$BIN" run "$SPEC" --dry-run --calibrate --set output="$TMP/r.h5" > "$TMP/cal" 2>&1 || { cat "$TMP/cal"; fail "dry run --calibrate"; }
[ "$(grep -c '^calibrated: ' "$TMP/cal")" = 1 ] || { cat "$TMP/cal"; fail "not one calibration line"; }
f=$(sed -n 's/^calibrated: small-p trains at [0-9]* images\/s on one core here, \([0-9.]*\)x the cost model.s rows (2 ranks timed at once)$/\1/p' "$TMP/cal")
[ -n "$f" ] || { cat "$TMP/cal"; fail "no calibration line for 2 ranks timed at once"; }
c0=$(sed -n 's/^estimated cost: \([0-9]*\) core-seconds.*/\1/p' "$TMP/plain")
c1=$(sed -n 's/^estimated cost: \([0-9]*\) core-seconds.*/\1/p' "$TMP/cal")
awk -v f="$f" -v a="$c0" -v b="$c1" 'BEGIN { e = a / f; exit !(f > 0 && b >= 0.98 * e - 1 && b <= 1.02 * e + 1) }' \
  || fail "estimated cost $c0 core-seconds, $c1 calibrated with factor $f"
[ ! -e "$TMP/r.h5" ] && [ ! -e "$TMP/r.h5.journal" ] || fail "a dry run wrote results"
echo "ok: calibrated dry run under mpirun: factor $f, cost $c0 -> $c1 core-seconds"
