#!/bin/sh
# Side-by-side speed and memory figures: ipsweep against PyTorch
# (../shared/bench/torch_anchor.py) at the same batch and thread count, for
# small-p, alexnet-p and resnet18-p, alternating the two REPS times per
# network and reporting medians (the machine is shared and noisy: compare
# ratios measured in one run). Usage: scripts/bench.sh [THREADS] [BATCH] [REPS] [ARCHS]
# ARCHS: a space-separated subset (default "small-p alexnet-p resnet18-p").
# Prints `bench gemm` (1024^3), then per network one line of medians and
# ratios, with the peak RSS of each side (one process per network on both
# sides, so each peak is that network's).
set -eu
THREADS=${1:-2}; BATCH=${2:-64}; REPS=${3:-3}; ARCHS=${4:-"small-p alexnet-p resnet18-p"}
BIN=${IPSWEEP_BIN:-build/ipsweep}
ANCHOR=${TORCH_ANCHOR:-../shared/bench/torch_anchor.py}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
$BIN bench gemm --threads "$THREADS" | tee "$tmp/gemm"
have_torch=0
[ -f "$ANCHOR" ] && /usr/bin/python3 -c "import torch" 2>/dev/null && have_torch=1

# One network of torch_anchor.py in its own process: its definitions and its
# bench() (the anchor's own timing), then the process's peak RSS.
torch_one() {
  /usr/bin/python3 - "$ANCHOR" "$THREADS" "$BATCH" "$1" <<'PY'
import resource, sys
anchor, threads, batch, arch = sys.argv[1:5]
src = open(anchor).read()
src = src[:src.index('\nbench("alexnet-p cifar"')]  # the definitions, not the runs
sys.argv = [anchor, threads, batch]
g = {"__name__": "torch_anchor"}
exec(compile(src, anchor, "exec"), g)
net = {"small-p": ("small-p fmnist", "small_p", (1, 28, 28), 30),
       "alexnet-p": ("alexnet-p cifar", "alexnet_p", (3, 32, 32), 10),
       "resnet18-p": ("resnet18-p cifar", "resnet18_p", (3, 32, 32), 5)}[arch]
g["bench"](net[0], g[net[1]](), net[2], net[3])
print(f"{arch} torch peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
PY
}

# ipsweep's steps per run: resnet18-p's step is ~1 s, the others' 20-250 ms
steps_of() { [ "$1" = resnet18-p ] && echo "--steps 4 --warmup 1" || echo "--steps 10"; }

i=0
while [ $i -lt "$REPS" ]; do
  for a in $ARCHS; do
    # shellcheck disable=SC2046
    $BIN bench train --arch "$a" --batch "$BATCH" --threads "$THREADS" $(steps_of "$a") >> "$tmp/ours.$a"
    [ $have_torch = 1 ] && torch_one "$a" >> "$tmp/torch.$a"
  done
  i=$((i + 1))
done
# median of the values of KEY in lines of FILE (matching PATTERN)
median() { grep -- "$3" "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
gemm=$(median "$tmp/gemm" gemm_gflops .)
for a in $ARCHS; do
  tr=$(median "$tmp/ours.$a" train_img_per_s .); inf=$(median "$tmp/ours.$a" infer_img_per_s .)
  gf=$(median "$tmp/ours.$a" gflops "bench=train"); rss=$(median "$tmp/ours.$a" peak_rss_mb .)
  line="arch=$a threads=$THREADS batch=$BATCH reps=$REPS ipsweep_train_img_per_s=$tr ipsweep_infer_img_per_s=$inf ipsweep_gflops=$gf gemm_gflops=$gemm ipsweep_peak_rss_mb=$rss"
  if [ $have_torch = 1 ]; then
    tt=$(median "$tmp/torch.$a" train_img_per_s "cifar\|fmnist"); ti=$(median "$tmp/torch.$a" infer_img_per_s "cifar\|fmnist")
    trss=$(median "$tmp/torch.$a" peak_rss_mb torch)
    line="$line torch_train_img_per_s=$tt torch_infer_img_per_s=$ti torch_peak_rss_mb=$trss train_ratio=$(ratio "$tr" "$tt") infer_ratio=$(ratio "$inf" "$ti") rss_ratio=$(ratio "$rss" "$trss")"
  fi
  echo "$line"
done
