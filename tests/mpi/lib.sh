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
fail() { echo "FAIL: $*" >&2; exit 1; }
# The metrics of a results file, without wall times and ranks: every
# /metrics dataset plus the keys and statuses of /tasks, as text.
metrics_of() {
  h5dump -g /metrics "$1" | grep -v '^HDF5 "' > "$2.metrics"
  h5dump -d /tasks/key -d /tasks/status "$1" | grep -v '^HDF5 "' >> "$2.metrics"
}
