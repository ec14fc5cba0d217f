# The command-line test scripts' common start, sourced after `set -u`:
#   . "$(dirname "$0")/lib.sh" NAME
# root (the repository), BIN ($IPSWEEP_BIN or build/ipsweep, which must
# exist), a private directory `work` that is made current and removed at
# exit, one BLAS thread, and the counters pass/fail with ok and bad (each
# script prints "NAME: P passed, F failed" and exits non-zero on a failure).
name=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${IPSWEEP_BIN:-$root/build/ipsweep}
[ -x "$BIN" ] || { echo "$name: $BIN not built"; exit 1; }
work=$(mktemp -d "/tmp/ipsweep-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export OPENBLAS_NUM_THREADS=1
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
