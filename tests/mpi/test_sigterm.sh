#!/bin/bash
# Time limits: a 3-rank run stopped twice with SIGTERM while its training
# tasks run, then resumed, ends with the metrics of an uninterrupted run.
#   1st stop: SIGTERM to every rank (what Slurm does at a time limit);
#   2nd stop: SIGTERM to the coordinator only (it tells the workers).
# Each stopped run exits 75, journals its running tasks as interrupted (I
# lines) with their state saved, and fails nothing; the resumed tasks
# continue from their state (never from an earlier point); no state file is
# left at the end.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/mpi/long.yaml
OUT=$TMP/stopped/r.h5
STATE=$TMP/stopped/r.d/state

$MPIRUN 3 "$BIN" run "$SPEC" --set output="$TMP/ref/r.h5" 2> "$TMP/ref.log" || { cat "$TMP/ref.log"; fail "reference run"; }
metrics_of "$TMP/ref/r.h5" "$TMP/ref"

# stop_run N WHO [--resume]: starts the 3-rank run, waits until N tasks were
# handed out and 3 s passed, sends SIGTERM to WHO (all | coordinator), and
# checks that it exits 75 within 20 s.
stop_run() {
  local n=$1 who=$2 log=$TMP/stop-$2.log
  shift 2
  setsid $MPIRUN 3 "$BIN" run "$SPEC" --set output="$OUT" "$@" 2> "$log" &
  local pid=$! i s
  for i in $(seq 1 300); do
    s=$(grep -c '^S' "$OUT.journal" 2>/dev/null || true)
    [ "${s:-0}" -ge "$n" ] && break
    sleep 0.1
  done
  sleep 3
  local pids
  mapfile -t pids < <(pgrep -f -- "ipsweep run $SPEC --set output=$OUT" | grep -v "^$pid\$" || true)
  [ ${#pids[@]} -ge 3 ] || { cat "$log"; fail "expected 3 ranks running, found ${#pids[@]}"; }
  if [ "$who" = all ]; then
    kill -TERM "${pids[@]}"
  else # the coordinator: rank 0 is the one whose environment says so
    local p0=""
    for p in "${pids[@]}"; do
      grep -qsxzF "OMPI_COMM_WORLD_RANK=0" "/proc/$p/environ" && p0=$p
    done
    [ -n "$p0" ] || fail "cannot find rank 0"
    kill -TERM "$p0"
  fi
  local t0=$SECONDS rc=0
  wait $pid || rc=$?
  [ $((SECONDS - t0)) -le 20 ] || fail "$who: the run took $((SECONDS - t0)) s to stop (at most 20)"
  [ $rc = 75 ] || { cat "$log"; fail "$who: exit status $rc, expected 75 (interrupted)"; }
  grep -q "stopped by SIGTERM" "$log" || { cat "$log"; fail "$who: no 'stopped by SIGTERM' line"; }
  grep -q -- "--resume" "$log" || fail "$who: the stop does not say how to continue"
  grep -q "^interrupted .*state saved to $STATE/" "$log" || { cat "$log"; fail "$who: no task saved its state"; }
  echo "sigterm: stopped ($who) in $((SECONDS - t0)) s: $(grep -c '^interrupted' "$log") tasks interrupted"
}

stop_run 2 all
grep -q $'^I\t' "$OUT.journal" || fail "the journal has no interruption (I) line"
first=$(grep '^interrupted' "$TMP/stop-all.log" | sed 's/.*interrupted at //; s/;.*//' | sort | head -1)
stop_run 2 coordinator --resume
grep -q "^resuming a train task" "$TMP/stop-coordinator.log" || { cat "$TMP/stop-coordinator.log"; fail "the second run did not resume from the state files"; }
[ "$(grep -c $'^I\t' "$OUT.journal")" -ge 2 ] || fail "the second stop journaled no interruption"

$MPIRUN 3 "$BIN" run "$SPEC" --set output="$OUT" --resume 2> "$TMP/last.log" || { cat "$TMP/last.log"; fail "final resume"; }
grep -q "^resuming a train task" "$TMP/last.log" || fail "the final run did not resume from the state files"
grep -q " 0 failed" "$TMP/last.log" || { cat "$TMP/last.log"; fail "tasks failed"; }
grep -q $'^F\t[^\t]*\tfailed' "$OUT.journal" && fail "the journal records a failed task (the crash-twice rule counted an interruption?)"
metrics_of "$OUT" "$TMP/stopped"
diff -u "$TMP/ref.metrics" "$TMP/stopped.metrics" > "$TMP/diff" || { head -40 "$TMP/diff"; fail "the run stopped twice differs from the uninterrupted one"; }
left=$(find "$STATE" -name '*.state' | wc -l)
[ "$left" = 0 ] || fail "$left state files left after every task finished"
echo "sigterm: stopped twice (first at $first), resumed: metrics identical to the uninterrupted run, no failed task, no state left"
