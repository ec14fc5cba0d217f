#!/bin/bash
# `run --calibrate` under mpirun (runner/run/cmd_run.c, calibrate_costs): the
# two workers time themselves at once and rank 0 scales the estimates by their
# means, so a dry run prints one calibration line per architecture (small-p,
# alexnet-p) naming 2 ranks, and estimates that are the uncalibrated ones
# divided by the factors (tests/cli/check_calibrated.sh); nothing is written.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/cli/calibrate.yaml # an alexnet-p trained (#0) and evaluated (#2), a v1 one's fake1 (#3)
$MPIRUN 3 "$BIN" run "$SPEC" --dry-run --set output="$TMP/r.h5" > "$TMP/plain" 2>&1 || { cat "$TMP/plain"; fail "dry run"; }
$MPIRUN 3 "$BIN" run "$SPEC" --dry-run --calibrate --set output="$TMP/r.h5" > "$TMP/cal" 2>&1 || { cat "$TMP/cal"; fail "dry run --calibrate"; }
msg=$(sh "$ROOT/tests/cli/check_calibrated.sh" "$TMP/plain" "$TMP/cal" 2 alexnet-p 0 2 3) || { cat "$TMP/cal"; fail "$msg"; }
[ ! -e "$TMP/r.h5" ] && [ ! -e "$TMP/r.h5.journal" ] || fail "a dry run wrote results"
echo "ok: calibrated dry run under mpirun: ${msg#ok: }"
