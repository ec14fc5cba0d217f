#!/bin/bash
# The same spec gives bit-identical metrics on 1 rank (no mpirun) and on 3 ranks.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/mpi/tiny.yaml
"$BIN" run "$SPEC" --set output="$TMP/one/r.h5" 2> "$TMP/one.log" || { cat "$TMP/one.log"; fail "1-rank run"; }
$MPIRUN 3 "$BIN" run "$SPEC" --set output="$TMP/three/r.h5" 2> "$TMP/three.log" || { cat "$TMP/three.log"; fail "3-rank run"; }
metrics_of "$TMP/one/r.h5" "$TMP/one"
metrics_of "$TMP/three/r.h5" "$TMP/three"
grep -q 'test_acc' "$TMP/one.metrics" || fail "no test_acc metrics in the results"
diff -u "$TMP/one.metrics" "$TMP/three.metrics" > "$TMP/diff" || { head -40 "$TMP/diff"; fail "metrics differ between 1 and 3 ranks"; }
grep -q 'rank 2' "$TMP/three.log" || fail "rank 2 ran no task (3-rank run not distributed?)"
echo "determinism: 1 rank and 3 ranks give identical metrics ($(grep -c '^\[' "$TMP/one.log") task lines)"
