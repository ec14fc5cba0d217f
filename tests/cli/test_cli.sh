#!/bin/bash
# The command line's promises (runner/cli/cli.h, README "Single commands"):
# --help of every command and benchmark prints to stdout and exits 0; a bad
# option or argument prints ONE line on stderr, nothing on stdout, writes no
# file and exits 2; unknown options, commands and benchmarks get a
# did-you-mean; the top-level help lists every benchmark; `help CMD` prints
# CMD's help. Usage: IPSWEEP_BIN=build/ipsweep bash tests/cli/test_cli.sh
set -u
BIN=${IPSWEEP_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/ipsweep}
[ -x "$BIN" ] || { echo "test_cli: $BIN not built"; exit 1; }
work=$(mktemp -d /tmp/ipsweep-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export OPENBLAS_NUM_THREADS=1
pass=0 fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

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
for c in run validate report kinds train eval task bench version help; do
    expect_help "$c" --help
    expect_help "$c" -h
    expect_help help "$c"
done
for b in $benches; do
    expect_help bench "$b" --help
    expect_help help bench "$b"
    expect_error 'unknown option "--no-such-option"' bench "$b" --no-such-option
done
for c in run validate report train eval; do
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
run task noop --value 3
[ $rc -eq 0 ] && [ "$out" = "value=3" ] && [ ! -s "$work/e" ] && ok || bad "task noop: rc=$rc out='$out' err='$err'"
rm -rf "${work:?}"/* 2>/dev/null
expect_error 'expects one results file' report
expect_error 'nosuch.h5' report nosuch.h5

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
