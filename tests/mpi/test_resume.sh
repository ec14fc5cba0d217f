#!/bin/bash
# A 3-rank run killed with SIGKILL mid-way and resumed gives the same tasks and
# metrics as an uninterrupted run; `run` refuses to overwrite without --resume/--force.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/mpi/tiny.yaml
OUT=$TMP/killed/r.h5
"$BIN" run "$SPEC" --set output="$TMP/ref/r.h5" 2> "$TMP/ref.log" || { cat "$TMP/ref.log"; fail "reference run"; }
metrics_of "$TMP/ref/r.h5" "$TMP/ref"

setsid $MPIRUN 3 "$BIN" run "$SPEC" --set output="$OUT" 2> "$TMP/killed.log" &
pid=$!
# wait until a few tasks are journaled, then kill -9 the whole job (coordinator included)
for i in $(seq 1 600); do
  n=$(grep -c '^F' "$OUT.journal" 2>/dev/null || true)
  [ "${n:-0}" -ge 4 ] && break
  sleep 0.1
done
kill -9 -- -$pid 2>/dev/null || kill -9 $pid
wait $pid 2>/dev/null || true
[ "${n:-0}" -ge 4 ] || { cat "$TMP/killed.log"; fail "the run did not journal 4 tasks in 60 s"; }
done_before=$n

# without --resume or --force, run refuses and leaves the files alone
if "$BIN" run "$SPEC" --set output="$OUT" 2> "$TMP/refuse.log"; then fail "run overwrote an existing output"; fi
grep -q -- '--resume' "$TMP/refuse.log" || { cat "$TMP/refuse.log"; fail "refusal does not explain --resume/--force"; }

$MPIRUN 3 "$BIN" run "$SPEC" --set output="$OUT" --resume 2> "$TMP/resume.log" || { cat "$TMP/resume.log"; fail "resume"; }
grep -q "already done" "$TMP/resume.log" || fail "resume did not report the tasks already done"
metrics_of "$OUT" "$TMP/resumed"
diff -u "$TMP/ref.metrics" "$TMP/resumed.metrics" > "$TMP/diff" || { head -40 "$TMP/diff"; fail "resumed run differs from the uninterrupted one"; }
echo "resume: killed after $done_before journaled tasks; resumed run matches the uninterrupted one"
