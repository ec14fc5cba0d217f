#!/bin/sh
# Checks a `run --dry-run --calibrate` against the same dry run without it
# (runner/run/cmd_run.c calibrate_costs; runner/kinds/cost.c): one
# calibration line for small-p (the default row) and one for ARCH, each
# naming RANKS rank(s) timed at once and two factors; the evaluation task
# #EVAL (of an ARCH model) estimated at the plain estimate over ARCH's
# evaluation factor (up to the printed rounding), and the training task
# #TRAIN (an ARCH), whose epochs end in evaluations, over a mixture of ARCH's
# two factors (between them). That each row is scaled by exactly its factors
# is tests/test_sizing.c's. Prints "ok: ..." or the reason, exits 1.
# Usage: check_calibrated.sh PLAIN_OUTPUT CALIBRATED_OUTPUT RANKS ARCH TRAIN EVAL
set -eu
plain=$1 cal=$2 ranks=$3 arch=$4 train=$5 eval=$6
s=$([ "$ranks" = 1 ] || echo s)
factors_of() { # "training evaluation" factors of the calibration line of arch $1
  n=$(grep -c "^calibrated: $1 " "$cal" || true)
  [ "$n" = 1 ] || { echo "$n calibration lines for $1, not 1"; return 1; }
  re="^calibrated: $1 trains at [0-9]* and evaluates at [0-9]* images/s on one core here, \([0-9.]*\)x and \([0-9.]*\)x its row of the cost model ($ranks rank$s timed at once)\$"
  f=$(sed -n "s|$re|\1 \2|p" "$cal")
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
[ -n "$t0" ] && [ -n "$t1" ] && [ -n "$e0" ] && [ -n "$e1" ] || { echo "no estimate of tasks #$train and #$eval"; exit 1; }
echo "$factors $t0 $t1 $e0 $e1" | awk -v arch="$arch" '
  function near(got, want) { return got >= 0.97 * want - 2 && got <= 1.03 * want + 2 }
  { ft = $1; fi = $2; lo = ft < fi ? ft : fi; hi = ft < fi ? fi : ft
    if (!(ft > 0 && fi > 0)) { print "factors " ft ", " fi; exit 1 }
    if (!(near($4, $3 / ft) || ($4 >= 0.97 * $3 / hi - 2 && $4 <= 1.03 * $3 / lo + 2))) {
      print "training estimate " $3 " s -> " $4 " s with factors " ft " and " fi; exit 1 }
    if (!near($6, $5 / fi)) { print "evaluation estimate " $5 " s -> " $6 " s with factor " fi; exit 1 }
    print "ok: " arch " factors " ft " (training: " $3 " -> " $4 " s) and " fi " (evaluation: " $5 " -> " $6 " s)" }'
