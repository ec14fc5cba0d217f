#!/bin/bash
# `ipsweep export` (runner/report/export.c, docs/results.md "Export") on a
# real results file: a tiny synthetic-data run with train (a bool and an
# int-list key, a two-axis sweep so keys hold commas), prune (`rate` is both a
# parameter and a metric) and eval tasks. Checks, against the HDF5 file read
# with h5py: one row per task in task-id order, unique columns in the
# documented order, parameters typed by their spec type, metrics that read
# back bit for bit, empty cells where a kind has no such column; CSV loads
# with pandas.read_csv(path) and no options when pandas is installed (else
# with python's csv module), TSV the same way; --out is the same bytes as
# stdout; bad input prints one line and exits 2.
# Usage: IPSWEEP_BIN=build/ipsweep bash tests/cli/test_export.sh
set -u
. "$(dirname "$0")/lib.sh" test_export
PY=/usr/bin/python3
$PY -c 'import h5py' 2>/dev/null || { echo "test_export: python3-h5py is missing (make deps)"; exit 1; }

cat >spec.yaml <<'EOF'
name: export
seed: 3
output: out/exp.h5
data:
  source: synthetic:256x1x16x16/10
  train_limit: 192
  test_limit: 64
defaults:
  models: {arch: small-p-narrow, epochs: 1, batch: 32}
models:
  - name: base
    seed: [1, 2]
    augment: true
    milestones: "1,2"
    lr: [0.01, 0.05]
tasks:
  - name: pruned
    kind: prune
    model: base
    rate: [0.0, 0.5]
  - name: ev
    kind: eval
    model: pruned
EOF
if ! "$BIN" run spec.yaml >run.log 2>&1; then
    echo "test_export: the run that makes the results file failed:"; tail -5 run.log; exit 1
fi

"$BIN" export out/exp.h5 >stdout.csv 2>err && [ ! -s err ] && ok || bad "export to stdout: $(cat err)"
"$BIN" export out/exp.h5 --out out/exp.csv 2>err && [ ! -s err ] && ok || bad "export --out: $(cat err)"
cmp -s stdout.csv out/exp.csv && ok || bad "--out FILE differs from stdout"
[ -z "$(ls out | grep '\.tmp\.')" ] && ok || bad "--out left a temporary file: $(ls out)"
"$BIN" export out/exp.h5 --format tsv --out out/exp.tsv 2>err && ok || bad "export --format tsv: $(cat err)"

if $PY -c 'import pandas' 2>/dev/null; then pandas=1; else
    pandas=0; echo "SKIP pandas.read_csv: pandas is not installed (checked with the csv module)"; fi
if $PY - out/exp.h5 out/exp.csv out/exp.tsv "$pandas" >py.log 2>&1 <<'PYEOF'; then ok; else bad "table checks:"; cat py.log; fi
import csv, math, sys
import h5py
h5, csv_path, tsv_path, use_pandas = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"

def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)

f = h5py.File(h5, "r")
tasks = {c: [s(v) for v in f["tasks"][c][()]] for c in ("key", "kind", "name", "status")}
n = len(tasks["key"])
params, metrics = {}, {}  # (task id, name) -> value
pnames, mnames = set(), set()
for kind in f["params"]:
    g = f["params"][kind]
    for c in g:
        if c != "task_id":
            pnames.add(c)
            for tid, v in zip(g["task_id"][()], g[c][()]):
                if s(v):
                    params[(int(tid), c)] = s(v)
for kind in f["metrics"]:
    g = f["metrics"][kind]
    for c in g:
        if c not in ("task_id", "key"):
            mnames.add(c)
            for tid, v in zip(g["task_id"][()], g[c][()]):
                if not math.isnan(v):
                    metrics[(int(tid), c)] = float(v)
pnames, mnames = sorted(pnames), sorted(mnames)
both = set(pnames) & set(mnames)
assert "rate" in both, "the fixture must have a parameter and a metric of the same name"
header = ["key", "kind", "name", "status"] + [("param." if p in both else "") + p for p in pnames] + \
         [("metric." if m in both else "") + m for m in mnames]
assert len(set(header)) == len(header), header

for path, delim in ((csv_path, ","), (tsv_path, "\t")):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=delim))
    assert rows[0] == header, (path, rows[0], header)
    assert len(rows) == n + 1, (path, len(rows), n)
    for t, row in enumerate(rows[1:]):
        assert len(row) == len(header), (path, t, row)
        cell = dict(zip(header, row))
        for c in ("key", "kind", "name", "status"):
            assert cell[c] == tasks[c][t], (path, t, c, cell[c])
        for p in pnames:
            got, want = cell[("param." if p in both else "") + p], params.get((t, p))
            if want is None:
                assert got == "", (path, t, p, got)
            elif p in ("rate", "lr", "seed", "epochs", "batch"):  # numbers in the spec
                assert float(got) == float(want) and got.lower() not in ("true", "false"), (path, t, p, got)
            elif p == "augment":                                  # a boolean in the spec
                assert got == want and got in ("true", "false"), (path, t, p, got)
            else:
                assert got == want, (path, t, p, got, want)
        for m in mnames:
            got, want = cell[("metric." if m in both else "") + m], metrics.get((t, m))
            assert (got == "") if want is None else float(got) == want, (path, t, m, got, want)  # bit for bit
    kinds = {r[1] for r in rows[1:]}
    assert kinds == {"train", "prune", "eval"}, kinds
    assert any("," in r[0] for r in rows[1:]), "keys with commas expected (quoted)"

if use_pandas:
    import pandas as pd
    df = pd.read_csv(csv_path)
    assert list(df.columns) == header and len(df) == n, (list(df.columns), len(df))
    assert df["param.rate"].dtype.kind == "f" and df["metric.rate"].dtype.kind == "f"
    assert df["test_acc"].dtype.kind == "f" and df["key"].tolist() == tasks["key"]
    dt = pd.read_csv(tsv_path, sep="\t")
    assert dt.shape == df.shape
print("ok")
PYEOF

# errors: one line on stderr, exit 2, nothing on stdout, no --out file
expect_error() {
    local pat=$1; shift
    "$BIN" "$@" >o 2>e; local rc=$?
    if [ $rc -eq 2 ] && [ ! -s o ] && [ "$(wc -l <e)" -eq 1 ] && grep -q -- "$pat" e && [ ! -e err.csv ]; then ok
    else bad "'$*': rc=$rc (want 2), stdout $(wc -l <o) lines, stderr: '$(cat e)' (want /$pat/)"; fi
    rm -f err.csv
}
: >empty.h5
ckpt=$(ls out/exp.d/ckpt/*.h5 | head -1)
expect_error 'nosuch.h5' export nosuch.h5 --out err.csv
expect_error 'not a valid HDF5 file' export spec.yaml --out err.csv
expect_error 'empty' export empty.h5 --out err.csv
expect_error 'missing group /tasks' export "$ckpt" --out err.csv
expect_error 'expects one results file' export
expect_error '--format must be csv or tsv' export out/exp.h5 --format xls
expect_error 'did you mean --format' export out/exp.h5 --fromat csv
expect_error 'directory does not exist' export out/exp.h5 --out nodir/x.csv
expect_error 'is the results file itself' export out/exp.h5 --out out/exp.h5
"$BIN" export --help | grep -q '^usage: ipsweep export' && ok || bad "export --help"

echo "export: $pass passed, $fail failed"
[ $fail -eq 0 ]
