# Shared by the MPI integration tests (sourced).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${IPSWEEP_BIN:-$ROOT/build/ipsweep}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# no busy-polling ranks on an oversubscribed machine; no CMA (fails in some containers)
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OPENBLAS_NUM_THREADS=1
MPIRUN="mpirun --oversubscribe -n"
TMP=$(mktemp -d /tmp/ipsweep-mpitest-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# Open MPI's shared-memory segments in $TMP, not /dev/shm: the ranks a test
# kills (or a cancelled Slurm job's) leave theirs behind, 3 per run.
export OMPI_MCA_btl_vader_backing_directory=$TMP
fail() { echo "FAIL: $*" >&2; exit 1; }
# The metrics of a results file, without wall times, speeds and ranks: every
# /metrics dataset but timings (*_per_s, *seconds), the /ipguard verdicts,
# and the keys and statuses of /tasks, as text.
metrics_of() {
  : > "$2.metrics"
  for d in $(h5ls -r "$1/metrics" | awk '$2 == "Dataset" {print $1}' | grep -Ev '(_per_s|seconds)$'); do
    h5dump -d "/metrics$d" "$1" | grep -v '^HDF5 "' >> "$2.metrics"
  done
  if h5ls "$1/ipguard" > /dev/null 2>&1; then h5dump -g /ipguard "$1" | grep -v '^HDF5 "' >> "$2.metrics"; fi
  h5dump -d /tasks/key -d /tasks/status "$1" | grep -v '^HDF5 "' >> "$2.metrics"
}
