#!/bin/bash
# Run an ipsweep spec under PBS Pro / Torque. Submit from the repository root:
#   qsub -v SPEC=configs/quick.yaml jobs/pbs.sh
# Resubmitting resumes the run. See docs/hpc.md.
#PBS -N ipsweep
#PBS -l select=1:ncpus=3:mpiprocs=3
#PBS -l walltime=01:00:00
#PBS -j oe
set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
SPEC=${SPEC:?qsub -v SPEC=path/to/spec.yaml jobs/pbs.sh}
BIN=${IPSWEEP_BIN:-$PWD/build/ipsweep}
# module load openmpi openblas hdf5   # as built
export OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE} OMPI_MCA_mpi_yield_when_idle=1
NP=$(wc -l < "${PBS_NODEFILE:-/dev/null}" 2>/dev/null || echo 3)
[ "$NP" -gt 0 ] || NP=3
out=$("$BIN" validate "$SPEC" ${SET:-} --no-data-check | sed -n 's/.*results -> //p')
mode=""
[ -n "$out" ] && [ -e "$out.journal" ] && mode="--resume"
mpirun -n "$NP" "$BIN" run "$SPEC" $mode --threads 1 ${SET:-}
