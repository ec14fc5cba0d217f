#!/bin/bash
# The same spec gives bit-identical metrics on 1 rank (no mpirun, the default
# threads: all cores), on 1 rank with 2 BLAS threads and on 3 ranks of 1
# thread each: results depend neither on the rank count nor on the thread
# count (core/nn/gemm.h).
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/mpi/tiny.yaml
"$BIN" run "$SPEC" --set output="$TMP/one/r.h5" 2> "$TMP/one.log" || { cat "$TMP/one.log"; fail "1-rank run"; }
"$BIN" run "$SPEC" --threads 2 --set output="$TMP/two/r.h5" 2> "$TMP/two.log" || { cat "$TMP/two.log"; fail "1-rank 2-thread run"; }
grep -q '1 rank, 2 BLAS threads per rank' "$TMP/two.log" || { head -3 "$TMP/two.log"; fail "--threads 2 not in effect"; }
$MPIRUN 3 "$BIN" run "$SPEC" --threads 1 --set output="$TMP/three/r.h5" 2> "$TMP/three.log" || { cat "$TMP/three.log"; fail "3-rank run"; }
grep -q '3 ranks, 1 BLAS thread per rank' "$TMP/three.log" || { head -3 "$TMP/three.log"; fail "3 ranks of 1 thread not in effect"; }
metrics_of "$TMP/one/r.h5" "$TMP/one"
metrics_of "$TMP/two/r.h5" "$TMP/two"
metrics_of "$TMP/three/r.h5" "$TMP/three"
grep -q 'test_acc' "$TMP/one.metrics" || fail "no test_acc metrics in the results"
grep -q 'match' "$TMP/one.metrics" || fail "no match metrics in the results"
diff -u "$TMP/one.metrics" "$TMP/three.metrics" > "$TMP/diff" || { head -40 "$TMP/diff"; fail "metrics differ between 1 and 3 ranks"; }
diff -u "$TMP/two.metrics" "$TMP/three.metrics" > "$TMP/diff" || { head -40 "$TMP/diff"; fail "metrics differ between 1 rank x 2 threads and 3 ranks x 1 thread"; }
grep -q 'rank 2' "$TMP/three.log" || fail "rank 2 ran no task (3-rank run not distributed?)"
echo "determinism: 1 rank (default threads), 1 rank x 2 threads and 3 ranks x 1 thread give identical metrics ($(grep -c '^\[' "$TMP/one.log") task lines)"
