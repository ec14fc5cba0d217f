#!/bin/bash
# `ipsweep report` on real results files (docs/report.md "LaTeX", "Comparing
# runs"): a tiny synthetic-data study with every kind of table (passport
# models, pruning, flipping, fine-tuning, fake1/fake2/fake3, IPGuard
# fingerprints and matching) is run twice with different seeds; the report of
# one run and the comparison of both, in LaTeX, compile in
# \documentclass[twocolumn]{article} with no "Overfull \hbox" and no "Float
# too large" in the log; the markdown comparison has one column group per
# run. Without pdflatex the compile checks print SKIP (unless
# IPSWEEP_REQUIRE_PDFLATEX=1, then they fail).
# Usage: IPSWEEP_BIN=build/ipsweep bash tests/cli/test_latex.sh
set -u
. "$(dirname "$0")/lib.sh" test_latex

cat >spec.yaml <<'YAML'
name: latex
seed: 3
output: out/a.h5
data:
  source: synthetic:320x1x16x16/10
  train_limit: 256
  test_limit: 64
defaults:
  models: {arch: small-p-narrow, epochs: 1, batch: 32}
models:
  - name: base
    scheme: baseline
    seed: [1, 2]
  - name: indep
    scheme: baseline
    seed: 5
  - name: pv1
    scheme: v1
    signature: ip
tasks:
  - name: pruned
    kind: prune
    model: [base, pv1]
    rate: [0.0, 0.5]
  - name: ft
    kind: finetune
    model: [pv1, base]
    mode: [ftll, rtal]
    fraction: 0.5
    epochs: 1
  - name: flip
    kind: flip
    model: pv1
    fraction: [0.1, 0.5]
  - name: fake1
    kind: fake1
    model: pv1
    key_type: [random, image]
    reference: base
    passports: 40
    eval_images: 32
  - name: fake2
    kind: fake2
    model: pv1
    fraction: 0.1
    epochs: 1
  - name: fake3
    kind: fake3
    model: pv1
    flip_fraction: 0.5
    fraction: 0.25
    epochs: 1
  - name: fp
    kind: fingerprint
    model: base
    points: 16
    max_iter: 500
    k: 1
  - name: match
    kind: match
    fingerprint: fp
    suspect: [base, ft, pruned, indep]
YAML
for run in a b; do
    if ! "$BIN" run spec.yaml --set output=out/$run.h5 --set seed=$([ $run = a ] && echo 3 || echo 4) >run-$run.log 2>&1; then
        echo "test_latex: the run that makes results file $run failed:"; tail -5 run-$run.log; exit 1
    fi
done

# compile BODY NAME: BODY in a two-column article; checks the log
compile() {
    local body=$1 name=paper-$2
    if ! command -v pdflatex >/dev/null 2>&1; then
        if [ "${IPSWEEP_REQUIRE_PDFLATEX:-0}" = 1 ]; then bad "$name: pdflatex is not installed"; else
            echo "SKIP: $name: pdflatex is not installed (texlive-latex-base)"; fi
        return
    fi
    cat >"$name.tex" <<TEX
\\documentclass[twocolumn]{article}
\\usepackage{graphicx}
\\IfFileExists{booktabs.sty}{\\usepackage{booktabs}}{\\newcommand{\\toprule}{\\hline}\\newcommand{\\midrule}{\\hline}\\newcommand{\\bottomrule}{\\hline}\\def\\cmidrule(##1)##2{\\cline{##2}}}
\\begin{document}
Some text of the paper.
\\input{$body}
\\end{document}
TEX
    if ! openout_any=p pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error "$name.tex" >/dev/null 2>&1; then
        bad "$name: pdflatex failed: $(grep -A2 '^!' "$name.log" | head -3)"; return
    fi
    if grep -q -E 'Overfull \\hbox|Float too large' "$name.log"; then
        bad "$name: $(grep -E 'Overfull \\hbox|Float too large' "$name.log" | head -3)"
    else ok; fi
}

"$BIN" report out/a.h5 --format latex >one.tex 2>err && [ ! -s err ] && ok || bad "report --format latex: $(cat err)"
for t in passport fake1 prune ipguard-suspects; do
    grep -q "label{tab:$t}" one.tex && ok || bad "no table $t in the LaTeX report"
done
compile one.tex one
"$BIN" report out/a.h5 out/b.h5 --format latex >two.tex 2>err && [ ! -s err ] && ok || bad "compare --format latex: $(cat err)"
grep -q 'multicolumn{[0-9]*}{c}{a} & \\multicolumn{[0-9]*}{c}{b}' two.tex && ok || bad "no column groups a, b in $(grep -m1 multicolumn two.tex)"
compile two.tex two

# markdown: one column group per run, labelled by --label; k an integer
"$BIN" report out/a.h5 out/b.h5 --table prune --label before,after >two.md 2>err && ok || bad "compare md: $(cat err)"
grep -q '^| model | rate | n (before) | accuracy (before) | detection (before) | n (after) |' two.md && ok ||
    bad "compare header: $(grep '^| model' two.md)"
"$BIN" report out/a.h5 --table ipguard >ig.md && grep -q '^| fp<base> | 1 |' ig.md && ok || bad "k: $(grep "fp<base>" ig.md)"
"$BIN" report out/a.h5 out/b.h5 --label x >/dev/null 2>err; [ $? -eq 2 ] && [ "$(wc -l <err)" -eq 1 ] && ok ||
    bad "--label with the wrong count: $(cat err)"

echo "test_latex: $pass passed, $fail failed"
[ $fail -eq 0 ]
