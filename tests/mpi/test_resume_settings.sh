#!/bin/bash
# A resume that changes the effective data settings (--set data.*) is refused
# with exit 2, naming the setting, and leaves the results file and the
# journal byte-identical.
. "$(dirname "$0")/lib.sh"
SPEC=$ROOT/tests/mpi/tiny.yaml
OUT=$TMP/r.h5
"$BIN" run "$SPEC" --set output="$OUT" --set data.train_limit=250 > /dev/null 2> "$TMP/run.log" || { cat "$TMP/run.log"; fail "first run"; }
sum() { md5sum "$OUT" "$OUT.journal"; }
before=$(sum)
for set in data.train_limit=200 data.test_limit=100 data.source=synthetic:384x1x16x16/11 seed=8; do
  rc=0
  "$BIN" run "$SPEC" --resume --set output="$OUT" --set data.train_limit=250 --set "$set" > /dev/null 2> "$TMP/resume.log" || rc=$?
  [ "$rc" = 2 ] || { cat "$TMP/resume.log"; fail "resume with --set $set: exit $rc, not 2"; }
  [ "$(wc -l < "$TMP/resume.log")" = 1 ] || { cat "$TMP/resume.log"; fail "resume with --set $set: not one line"; }
  grep -q "resume: ${set%%=*} is ${set#*=} but the run was started with" "$TMP/resume.log" || { cat "$TMP/resume.log"; fail "the change is not named"; }
  [ "$(sum)" = "$before" ] || fail "resume with --set $set changed the results or the journal"
done
"$BIN" run "$SPEC" --resume --set output="$OUT" --set data.train_limit=250 > /dev/null 2> "$TMP/resume.log" || { cat "$TMP/resume.log"; fail "resume with the same settings"; }
echo "resume_settings: changed data.train_limit/test_limit/source and seed refused with exit 2, files untouched"
