#!/bin/bash
# The command line's promises (runner/cli/cli.h, README "Single commands"):
# --help of every command and benchmark prints to stdout and exits 0; a bad
# option or argument prints ONE line on stderr, nothing on stdout, writes no
# file and exits 2; unknown options, commands and benchmarks get a
# did-you-mean; the top-level help lists every benchmark; `help CMD` prints
# CMD's help. Usage: IPSWEEP_BIN=build/ipsweep bash tests/cli/test_cli.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh" test_cli

# run CMD...: sets rc, out, err (files in $work/o, $work/e)
run() { "$BIN" "$@" >"$work/o" 2>"$work/e"; rc=$?; out=$(cat "$work/o"); err=$(cat "$work/e"); }

# expect_help WORDS...: exit 0, usage on stdout, nothing on stderr
expect_help() {
    run "$@"
    if [ $rc -eq 0 ] && grep -q '^usage: ' "$work/o" && [ ! -s "$work/e" ]; then ok
    else bad "'$*': rc=$rc, stdout $(wc -l <"$work/o") lines, stderr: $err"; fi
}

# expect_error PATTERN WORDS...: exit 2, one line on stderr matching PATTERN, no stdout, no file
expect_error() {
    local pat=$1; shift
    run "$@"
    local files; files=$(ls -A "$work" | grep -v '^[oe]$')
    if [ $rc -eq 2 ] && [ ! -s "$work/o" ] && [ "$(wc -l <"$work/e")" -eq 1 ] && grep -q -- "$pat" "$work/e" &&
        [ -z "$files" ]; then ok
    else bad "'$*': rc=$rc (want 2), stdout $(wc -l <"$work/o") lines, stderr: '$err' (want /$pat/), files: $files"; fi
    rm -rf "${work:?}"/* 2>/dev/null
}

benches=$("$BIN" bench --help | awk '/^benchmarks:/ {b=1; next} b && NF {print $1}')
[ "$(echo "$benches" | wc -w)" -ge 5 ] && ok || bad "bench --help lists: $benches"

# every command and benchmark: --help, -h, help CMD; a bad option
for c in run validate report export kinds train eval task bench version help; do
    expect_help "$c" --help
    expect_help "$c" -h
    expect_help help "$c"
done
for b in $benches; do
    expect_help bench "$b" --help
    expect_help help bench "$b"
    expect_error 'unknown option "--no-such-option"' bench "$b" --no-such-option
done
for c in run validate report export train eval; do
    expect_error 'unknown option "--no-such-option"' "$c" --no-such-option
done
expect_error 'takes no arguments' kinds --no-such-option
expect_error 'takes no arguments' version --no-such-option

# help CMD is CMD --help, not the top-level help
"$BIN" run --help >"$work/a"; "$BIN" help run >"$work/b"
cmp -s "$work/a" "$work/b" && ok || bad "help run differs from run --help"
rm -f "$work/a" "$work/b"

# the top-level help lists every benchmark of the one table
"$BIN" --help >"$work/a"
for b in $benches; do grep -q "bench.*\b$b\b" "$work/a" && ok || bad "top-level help does not list bench $b"; done
rm -f "$work/a"
expect_help --help
expect_help help
run; [ $rc -eq 2 ] && [ ! -s "$work/o" ] && grep -q '^usage: ' "$work/e" && ok || bad "no command: rc=$rc"

# bench without a benchmark is an error: stderr, exit 2
expect_error 'expects a benchmark' bench
expect_error 'did you mean train' bench tran
expect_error 'did you mean run' rn
expect_error 'did you mean --epochs' train --epoch 3
expect_error 'did you mean --model' eval --modle m.h5
expect_error 'did you mean --dry-run' run x.yaml --dryrun
expect_error 'did you mean --format' report r.h5 --fromat md
expect_error 'unknown command' help nosuchcommand

# train: every argument checked before the banner (one line, exit 2, nothing trained)
expect_error 'unknown --arch "resnet"' train --arch resnet --data synthetic:64
expect_error 'did you mean small-p' train --arch smal-p --data synthetic:64
expect_error '/nonexistent' train --data fashion-mnist:/nonexistent
expect_error '/nonexistent' train --data fashion-mnist:/nonexistent --out m.h5
expect_error 'unknown data kind\|kind' train --data nosuchkind:/tmp
expect_error 'directory' train --data synthetic:64 --out nodir/m.h5
expect_error 'required' train
expect_error 'expects an integer' train --data synthetic:64 --epochs x
expect_error '--norm' train --data synthetic:64 --norm xx
# eval: a missing checkpoint or data is bad input too
expect_error 'nope.h5' eval --model nope.h5 --data synthetic:64
expect_error 'required' eval --data synthetic:64
# task: any kind from the command line, its options from the kind's table
expect_help task --help
expect_help task prune --help
expect_help task fake1 -h
expect_error 'did you mean prune' task prun
expect_error 'out of range' task prune --model m.h5 --rate 2 --data synthetic:64
expect_error 'expects a number' task prune --model m.h5 --rate x --data synthetic:64
expect_error '--model is required' task prune --data synthetic:64
expect_error 'did you mean --rate' task prune --rat 0.3
expect_error 'did you mean screen' task fake1 --model m.h5 --mode scren --data synthetic:64
expect_error 'method cae needs surrogates and references' task fingerprint --model m.h5 --method cae --surrogates a.h5 --data synthetic:64
expect_error 'surrogates and references are for method cae' task fingerprint --model m.h5 --references a.h5,b.h5 --data synthetic:64
expect_error '--protocol needs a name' run configs/quick.yaml --dry-run --protocol
run task noop --value 3
[ $rc -eq 0 ] && [ "$out" = "value=3" ] && [ ! -s "$work/e" ] && ok || bad "task noop: rc=$rc out='$out' err='$err'"
rm -rf "${work:?}"/* 2>/dev/null
expect_error 'expects one results file' report
expect_error 'nosuch.h5' report nosuch.h5

# run --time-limit / --dry-run --threads (runner/run/sizing.h): readable
# durations, the warnings summarised (ten tasks named at most), exit 0; a bad
# limit is one line and exit 2, with or without --dry-run, before anything is written
spec=$here/sizing.yaml
SLURM_CPUS_PER_TASK=2 run run "$spec" --dry-run --threads 2 --time-limit 1:00
if [ $rc -eq 0 ] && grep -q 'est  *[0-9]*m [0-9]*s  train:a\[seed=1\]$' "$work/o" && grep -q '(4 threads)' "$work/o" &&
    grep -q '^estimated wall: ~[0-9]*h [0-9]*m with 1 worker; critical path [0-9]*[hm] [0-9]*[ms]$' "$work/o" &&
    ! grep -Eq '[0-9]{4,}(\.[0-9])?s' "$work/o" "$work/e"; then ok
else bad "dry run durations: rc=$rc, stdout: $out"; fi
for pat in '^note: 12 tasks take longer than the time limit (1m) but checkpoint themselves: up to ~[0-9]* job lengths' \
    '^  train:a\[seed=10\]: ~[0-9]*m [0-9]*s, needs ~[0-9]* job lengths$' '^  \.\.\. and 2 more$' \
    '^warning: 1 task has a single step longer than the time limit (1m): it can never make progress' \
    '^  train:huge: one step ~' '^warning: 1 task asks for up to 4 threads but a rank has 2 cores.*entries: huge (4)$' \
    '^sizing: ~.* needs about [0-9]* job lengths of 1m$'; do
    grep -q -- "$pat" "$work/e" && ok || bad "dry run warnings lack /$pat/: $err"
done
[ "$(wc -l <"$work/e")" -le 20 ] && ok || bad "dry run warnings not summarised: $(wc -l <"$work/e") lines"
# every kind that is long checkpoints; an evaluation does not, and a limit of one second is shorter than it
SLURM_CPUS_PER_TASK=2 run run "$spec" --dry-run --threads 2 --time-limit 0:01
grep -q '^warning: 1 task cannot checkpoint and takes longer than the time limit (1.0s): it will never finish' "$work/e" &&
    grep -q '^  eval:check<train:huge>: ~' "$work/e" && ok || bad "no never-finishes warning for the eval: $err"
# --calibrate: a line per architecture the spec's estimates read (small-p
# and alexnet-p here) with its four factors, the estimates divided by them
# (tests/cli/check_calibrated.sh)
run run "$here/calibrate.yaml" --dry-run --threads 1
cp "$work/o" "$work/plain"
run run "$here/calibrate.yaml" --dry-run --threads 1 --calibrate
if [ $rc -eq 0 ] && msg=$(sh "$here/check_calibrated.sh" "$work/plain" "$work/o" 1 alexnet-p 0 2 3); then ok
else bad "--calibrate: rc=$rc ${msg:-}: $out"; fi
rm -rf "${work:?}"/* 2>/dev/null
# group-norm models: a note that the cost model times them as batch norm's
# (runner/kinds/cost.h rn_task_group_norm): the gn training, the fine-tune
# of it and the prune of its student (a student has its teacher's norm),
# not the bn ones; none for a spec without gn
printf 'name: gn\ndata: {source: "synthetic:64"}\nmodels:\n  - {name: b}\n  - {name: g, norm: gn}\ntasks:\n%s\n%s\n%s\n' \
    '  - {name: ft, kind: finetune, model: [b, g], epochs: 1}' '  - {name: st, kind: distill, model: g, epochs: 1}' \
    '  - {name: pr, kind: prune, model: st, rate: 0.5}' >"$work/gn.yaml"
run run "$work/gn.yaml" --dry-run
grep -q '^note: 4 of the 6 tasks train or use group-norm models, which the cost model times as batch-norm ones' \
    "$work/e" && [ $rc -eq 0 ] && ok || bad "no group-norm note: rc=$rc $err"
run run "$spec" --dry-run
! grep -q 'group-norm' "$work/e" && ok || bad "a group-norm note without group norm: $err"
rm -rf "${work:?}"/* 2>/dev/null
for lim in 2h 90m 3600s 1d 1-12 1-2:30 2-00:00:00 1:00:00 90 UNLIMITED; do
    run run "$spec" --dry-run --time-limit "$lim"
    [ $rc -eq 0 ] && ok || bad "--time-limit $lim: rc=$rc err=$err"
done
rm -rf "${work:?}"/* 2>/dev/null
expect_error 'ipsweep run: --time-limit: bad time limit "1:61": .*below 60' run "$spec" --dry-run --time-limit 1:61
expect_error "--time-limit: bad time limit \"2x\": expected Slurm's" run "$spec" --dry-run --time-limit 2x
expect_error '--time-limit: bad time limit "0": it must be more than 0' run "$spec" --time-limit 0
expect_error '--time-limit: bad time limit "1-24"' run "$spec" --threads 2 --time-limit 1-24
# a real run warns at its start: a train on 64 synthetic images is estimated
# on 50,000 (no train_limit), longer than a ten-second limit (its step is
# not), and checkpoints
printf 'name: tiny\noutput: out/tiny.h5\ndata: {source: "synthetic:64"}\nmodels:\n  - {name: a, epochs: 1}\n' >"$work/tiny.yaml"
run run "$work/tiny.yaml" --threads 1 --time-limit 10s
if [ $rc -eq 0 ] && grep -q '^note: 1 task takes longer than the time limit (10s) but checkpoints itself' "$work/e" &&
    grep -q '^sizing: ~.* needs about [0-9]* job lengths of 10s$' "$work/e" && ! grep -q '^warning' "$work/e"; then ok
else bad "run --time-limit 10s: rc=$rc, stderr: $err"; fi
rm -rf "${work:?}"/* 2>/dev/null

# a single task's progress (runner/cli/task_cli.c): a bar on a terminal
# (`script` gives it one), no terminal codes in a log
run train --data synthetic:512 --epochs 2 --out "$work/t.h5"
[ $rc -eq 0 ] && ! grep -q $'\033' "$work/e" && ok || bad "train without a terminal: rc=$rc, stderr: $err"
if command -v script >/dev/null; then
    script -q -c "'$BIN' train --data synthetic:512 --epochs 2 --out '$work/t2.h5'" "$work/tty" >/dev/null 2>&1
    tr '\r' '\n' <"$work/tty" | grep -Eq '\[[#.]{20}\] +[0-9]+% \| elapsed [0-9]+:[0-5][0-9]:[0-5][0-9] \| ipsweep train' && ok ||
        bad "train on a terminal: no progress bar in $(cat -v "$work/tty" | head -c 600)"
fi
rm -rf "${work:?}"/* 2>/dev/null

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
