#!/bin/bash
# Every ```python and ```sh block of docs/results.md runs, as written, against
# a real results file: a small run of tests/mpi/tiny.yaml (synthetic data,
# every kind the examples read) written to results/quick.h5 in a scratch
# directory, the path the examples use. The pandas block is skipped, with a
# message, only when pandas is not installed (make deps installs it).
# Usage: IPSWEEP_BIN=build/ipsweep bash tests/docs/test_results_md.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${IPSWEEP_BIN:-$root/build/ipsweep}
PY=/usr/bin/python3
doc=$root/docs/results.md
[ -x "$BIN" ] || { echo "test_results_md: $BIN not built"; exit 1; }
$PY -c 'import h5py' 2>/dev/null || { echo "test_results_md: python3-h5py is missing (make deps)"; exit 1; }
# the ```sh blocks call `ipsweep` as an installed user would
export PATH="$(cd "$(dirname "$BIN")" && pwd):$PATH"
work=$(mktemp -d /tmp/ipsweep-docs-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
if ! OPENBLAS_NUM_THREADS=1 "$BIN" run "$root/tests/mpi/tiny.yaml" --set output=results/quick.h5 >run.log 2>&1; then
    echo "test_results_md: the run that makes the results file failed:"; tail -5 run.log; exit 1
fi

# blocks -> block-N.py / block-N.sh, in order
$PY - "$doc" <<'PYEOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
n = 0
for lang, body in re.findall(r"^```(python|sh)\n(.*?)^```", text, flags=re.S | re.M):
    n += 1
    ext = "py" if lang == "python" else "sh"
    open(f"block-{n:02d}.{ext}", "w", encoding="utf-8").write(body)
PYEOF

pass=0 fail=0 skip=0
for b in block-*; do
    first=$(grep -m1 -v '^\s*$' "$b")
    if [[ $b == *.py ]]; then
        if grep -q 'import.*pandas' "$b" && ! $PY -c 'import pandas' 2>/dev/null; then
            echo "SKIP $b ($first): pandas is not installed (apt-get install python3-pandas)"
            skip=$((skip + 1)); continue
        fi
        cmd=("$PY" "$b")
    else
        cmd=(bash -e "$b")
    fi
    if "${cmd[@]}" >"$b.out" 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL $b ($first):"; tail -5 "$b.out"
    fi
done
[ $((pass + fail + skip)) -ge 3 ] || { echo "test_results_md: only $((pass + fail + skip)) blocks found"; fail=$((fail + 1)); }
echo "docs: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
