#!/bin/bash
# A task that kills the process running it (SIGKILL after 0.3 s, as the OOM
# killer would) takes the job down. Its batch-mates lost with it are not
# blamed: the resume hands every task that was running alone to a worker;
# once the culprit has crashed its worker twice while alone, the next resume
# marks it failed ("crashed its worker twice") instead of retrying forever,
# and everything else finishes.
. "$(dirname "$0")/lib.sh"
cat > "$TMP/crash.yaml" <<'YAML'
name: crash
data: {source: "synthetic:8"}
tasks:
  - {name: ok, kind: noop, value: [1, 2, 3, 4, 5, 6]}
  - {name: boom, kind: noop, crash: true}
YAML
OUT=$TMP/out/r.h5
run() { $MPIRUN 3 "$BIN" run "$TMP/crash.yaml" --set output="$OUT" "$@" 2>> "$TMP/log"; }
if run; then cat "$TMP/log"; fail "a run with a crashing task succeeded"; fi
for i in 1 2; do
  if run --resume; then cat "$TMP/log"; fail "resume $i did not run the crashing task again"; fi
done
alone=$(grep -P "^S\tnoop:boom\t" "$OUT.journal" | grep -vc "shared" || true)
[ "$alone" -ge 2 ] || { cat "$OUT.journal"; fail "expected 2 starts of noop:boom alone, found $alone"; }
# the next resume fails it and finishes the rest: exit 1 (a task failed)
set +e; run --resume; rc=$?; set -e
[ "$rc" -eq 1 ] || { cat "$OUT.journal"; fail "the last resume exited with $rc, expected 1 (a task failed)"; }
h5dump -d /tasks/key -d /tasks/status -d /tasks/error "$OUT" > "$TMP/dump"
grep -q "crashed its worker twice" "$TMP/dump" || { cat "$TMP/dump"; fail "no 'crashed its worker twice' error in the results"; }
[ "$(grep -c "crashed its worker twice" "$TMP/dump")" -eq 1 ] || { cat "$TMP/dump"; fail "an innocent task was blamed"; }
[ "$(grep -o '"done"' "$TMP/dump" | wc -l)" -eq 6 ] || { cat "$TMP/dump"; fail "expected the 6 other tasks done"; }
echo "crash-twice: the task that killed its worker twice alone is failed on the next resume; its batch-mates finished"
