#!/bin/sh
# Side-by-side speed figures: ipsweep against PyTorch (../shared/bench/torch_anchor.py)
# at the same batch and thread count, alternating the two REPS times and
# reporting medians (the machine is shared and noisy: compare ratios measured
# in one run). Usage: scripts/bench.sh [THREADS] [BATCH] [REPS]
set -eu
THREADS=${1:-2}; BATCH=${2:-64}; REPS=${3:-3}
BIN=${IPSWEEP_BIN:-build/ipsweep}
ANCHOR=${TORCH_ANCHOR:-../shared/bench/torch_anchor.py}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
$BIN bench gemm --threads "$THREADS" | tee "$tmp/gemm"
have_torch=0
[ -f "$ANCHOR" ] && /usr/bin/python3 -c "import torch" 2>/dev/null && have_torch=1
i=0
while [ $i -lt "$REPS" ]; do
  for a in small-p alexnet-p; do
    $BIN bench train --arch "$a" --batch "$BATCH" --threads "$THREADS" --steps 10 >> "$tmp/ours.$a"
  done
  [ $have_torch = 1 ] && /usr/bin/python3 "$ANCHOR" "$THREADS" "$BATCH" >> "$tmp/torch"
  i=$((i + 1))
done
# median of the values of KEY in lines of FILE (matching PATTERN)
median() { grep -- "$3" "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
gemm=$(median "$tmp/gemm" gemm_gflops .)
for a in small-p alexnet-p; do
  tr=$(median "$tmp/ours.$a" train_img_per_s .); inf=$(median "$tmp/ours.$a" infer_img_per_s .)
  gf=$(median "$tmp/ours.$a" gflops "bench=train")
  line="arch=$a threads=$THREADS batch=$BATCH reps=$REPS ipsweep_train_img_per_s=$tr ipsweep_infer_img_per_s=$inf ipsweep_gflops=$gf gemm_gflops=$gemm"
  if [ $have_torch = 1 ]; then
    tt=$(median "$tmp/torch" train_img_per_s "^$a"); ti=$(median "$tmp/torch" infer_img_per_s "^$a")
    line="$line torch_train_img_per_s=$tt torch_infer_img_per_s=$ti train_ratio=$(echo "$tr $tt" | awk '{printf "%.2f", $1/$2}') infer_ratio=$(echo "$inf $ti" | awk '{printf "%.2f", $1/$2}')"
  fi
  echo "$line"
done
