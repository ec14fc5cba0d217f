#!/bin/sh
# Checks a `run --dry-run --calibrate` against the same dry run without it
# (runner/run/cmd_run.c calibrate_costs; runner/kinds/cost.c): one
# calibration line for small-p (the default row) and one for ARCH, each
# naming RANKS rank(s) timed at once and four factors (training in
# minibatches of 16 the second: the spec trains in minibatches of 64, which it
# does not change); the evaluation task
# #EVAL (of an ARCH model) estimated at the plain estimate over ARCH's
# evaluation factor (up to the printed rounding), the fake1 task #FAKE (random
# passports of an ARCH v1 model: the forger) over its forger factor, and the
# training task #TRAIN (an ARCH), whose epochs end in evaluations, over a
# mixture of ARCH's training and evaluation factors (between them). That each
# row is scaled by exactly its factors is tests/test_sizing.c's. Prints
# "ok: ..." or the reason, exits 1.
# Usage: check_calibrated.sh PLAIN_OUTPUT CALIBRATED_OUTPUT RANKS ARCH TRAIN EVAL FAKE
set -eu
plain=$1 cal=$2 ranks=$3 arch=$4 train=$5 eval=$6 fake=$7
s=$([ "$ranks" = 1 ] || echo s)
factors_of() { # "training evaluation forger" factors of the calibration line of arch $1
  n=$(grep -c "^calibrated: $1 " "$cal" || true)
  [ "$n" = 1 ] || { echo "$n calibration lines for $1, not 1"; return 1; }
  re="^calibrated: $1 trains at [0-9]* ([0-9]* in minibatches of 16) and evaluates at [0-9]* images/s and forges [0-9]* passport-images/s on one core here: \([0-9.]*\)x ([0-9.]*x), \([0-9.]*\)x and \([0-9.]*\)x its row of the cost model ($ranks rank$s timed at once)\$"
  f=$(sed -n "s|$re|\1 \2 \3|p" "$cal")
  [ -n "$f" ] || { echo "no calibration line for $1 and $ranks rank$s: $(grep "^calibrated: $1 " "$cal")"; return 1; }
  echo "$f"
}
factors_of small-p > /dev/null || { factors_of small-p; exit 1; }
factors=$(factors_of "$arch") || { echo "$factors"; exit 1; }
# a task's estimate in seconds, from its dry-run line "  #N  kind  est  1h 2m  key"
est() {
  sed -n "s/^  #$2 .* est  *\([0-9][0-9hms. ]*[hms]\)  .*/\1/p" "$1" |
    awk '{ t = 0; for (i = 1; i <= NF; i++) { v = $i + 0; u = substr($i, length($i));
             t += v * (u == "h" ? 3600 : u == "m" ? 60 : 1) } print t }'
}
t0=$(est "$plain" "$train") t1=$(est "$cal" "$train") e0=$(est "$plain" "$eval") e1=$(est "$cal" "$eval")
g0=$(est "$plain" "$fake") g1=$(est "$cal" "$fake")
[ -n "$t0" ] && [ -n "$t1" ] && [ -n "$e0" ] && [ -n "$e1" ] && [ -n "$g0" ] && [ -n "$g1" ] ||
    { echo "no estimate of tasks #$train, #$eval and #$fake"; exit 1; }
echo "$factors $t0 $t1 $e0 $e1 $g0 $g1" | awk -v arch="$arch" '
  function near(got, want) { return got >= 0.97 * want - 2 && got <= 1.03 * want + 2 }
  { ft = $1; fi = $2; ff = $3; lo = ft < fi ? ft : fi; hi = ft < fi ? fi : ft
    if (!(ft > 0 && fi > 0 && ff > 0)) { print "factors " ft ", " fi ", " ff; exit 1 }
    if (!(near($5, $4 / ft) || ($5 >= 0.97 * $4 / hi - 2 && $5 <= 1.03 * $4 / lo + 2))) {
      print "training estimate " $4 " s -> " $5 " s with factors " ft " and " fi; exit 1 }
    if (!near($7, $6 / fi)) { print "evaluation estimate " $6 " s -> " $7 " s with factor " fi; exit 1 }
    if (!near($9, $8 / ff)) { print "fake1 estimate " $8 " s -> " $9 " s with forger factor " ff; exit 1 }
    print "ok: " arch " factors " ft " (training: " $4 " -> " $5 " s), " fi " (evaluation: " $6 " -> " $7 \
          " s) and " ff " (forger: " $8 " -> " $9 " s)" }'
