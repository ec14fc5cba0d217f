#!/bin/bash
# Progress under MPI without a terminal: the workers' notes reach the
# coordinator, whose status lines show a running training task part-way
# (N%) and an ETA in h:mm:ss; the last one says every task is done.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/mpi/long.yaml
LOG=$TMP/progress.log
# one model a (4 epochs, ~10 s of one core) beside p (2 epochs): the first status line comes after 5 s
$MPIRUN 3 "$BIN" run "$SPEC" --set output="$TMP/p/r.h5" --set 'models[0].seed=[1]' 2> "$LOG" > /dev/null ||
  { cat "$LOG"; fail "the run failed"; }
grep -Eq '^status: [01]/4 done, 0 failed, 0 skipped, [12] running \([0-9]+%.*\) \| [0-9]+% of the work \| ETA [0-9]+:[0-5][0-9]:[0-5][0-9]' "$LOG" ||
  { cat "$LOG"; fail "no status line with a running task's progress"; }
grep -q $'\r' "$LOG" && fail "terminal codes in a log"
last=$(grep '^status:' "$LOG" | tail -1)
case "$last" in
  "status: 4/4 done, 0 failed, 0 skipped, 0 running | 100% of the work | ETA 0:00:00 |"*) ;;
  *) cat "$LOG"; fail "last status line: $last" ;;
esac
echo "progress: $(grep -c '^status:' "$LOG") status lines, e.g. $(grep -m1 'running (' "$LOG")"

# --progress bar: the bar anyway, although rank 0's stderr is a pipe (a
# terminal in front of mpirun); it is redrawn in place and moves during the
# training task ([#..] with a percentage and an ETA)
BAR=$TMP/bar.log
$MPIRUN 3 "$BIN" run "$SPEC" --set output="$TMP/b/r.h5" --set 'models[0].seed=[1]' --progress bar 2> "$BAR" > /dev/null ||
  { cat "$BAR"; fail "the run with --progress bar failed"; }
grep -q $'\r' "$BAR" || { cat "$BAR"; fail "--progress bar: no bar redrawn in place"; }
tr '\r' '\n' < "$BAR" | sed 's/\x1b\[K//g' | grep -Eq '^\[[#.]{20}\] +[0-9]+% ETA [0-9]+:[0-5][0-9]:[0-5][0-9]' ||
  { cat -A "$BAR" | head -20; fail "--progress bar: no bar with a percentage and an ETA"; }
grep -q '^status:' "$BAR" && fail "--progress bar: log status lines as well"
echo "progress: --progress bar draws the bar under mpirun"
