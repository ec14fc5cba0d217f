#!/bin/bash
# Run an ipsweep spec under PBS Pro / Torque. Submit from the repository root:
#   qsub -v SPEC=configs/quick.yaml jobs/pbs.sh
#   qsub -v "SPEC=configs/quick.yaml,SET=--set output=results/q.h5" jobs/pbs.sh
# Resubmitting resumes the run. See docs/hpc.md.
#
# Time limits: PBS has no signal ahead of the walltime (at the walltime it
# sends SIGTERM and, kill_delay seconds later, SIGKILL), so this script sets
# its own: IPSWEEP_LEAD seconds (120) before the walltime it sends the ranks
# SIGUSR1; they save their tasks' state and exit with status 75; the script
# then submits itself again (qsub, after this job: qrerun needs an operator),
# with the same SPEC, SET and walltime, up to IPSWEEP_MAX_REQUEUE times (10).
# Written for PBS Pro and Torque, never run on them (docs/hpc.md, "PBS").
#PBS -N ipsweep
#PBS -l select=1:ncpus=3:mpiprocs=3
#PBS -l walltime=01:00:00
#PBS -j oe
#PBS -r y
set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
SPEC=${SPEC:?qsub -v SPEC=path/to/spec.yaml jobs/pbs.sh}
BIN=${IPSWEEP_BIN:-$PWD/build/ipsweep}
INTERRUPTED=75 # ipsweep run: stopped by a signal, tasks saved (core/util/err.h)
LEAD=${IPSWEEP_LEAD:-120}
MAX_REQUEUE=${IPSWEEP_MAX_REQUEUE:-10}
RESTARTS=${IPSWEEP_REQUEUE_COUNT:-0} # set by this script in the job it submits
# $0 is PBS's copy of the script: the one to submit again is the repository's
SCRIPT=${IPSWEEP_PBS_SCRIPT:-$PWD/jobs/pbs.sh}
for v in LEAD MAX_REQUEUE RESTARTS; do
  case ${!v} in '' | *[!0-9]*) echo "ipsweep: $v must be a whole number, not '${!v}'" >&2; exit 2 ;; esac
done
# module load openmpi openblas hdf5   # as built
export OPENBLAS_NUM_THREADS=1 HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE} OMPI_MCA_mpi_yield_when_idle=1
NP=$(wc -l < "${PBS_NODEFILE:-/dev/null}" 2>/dev/null || echo 3)
[ "$NP" -gt 0 ] || NP=3
# shellcheck disable=SC2086 # SET is a list of options
out=$("$BIN" validate "$SPEC" ${SET:-} --no-data-check | sed -n 's/.*results -> //p')
mode=""
[ -n "$out" ] && [ -e "$out.journal" ] && mode="--resume"

# The job's walltime (HH:MM:SS), for the timer and for ipsweep's warnings.
wall=$(qstat -f "${PBS_JOBID:-}" 2>/dev/null | sed -n 's/^ *Resource_List.walltime = *//p' || true)
secs="" tlimit=()
if [[ $wall =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]]; then
  secs=$((10#${BASH_REMATCH[1]} * 3600 + 10#${BASH_REMATCH[2]} * 60 + 10#${BASH_REMATCH[3]}))
  tlimit=(--time-limit "$wall")
fi
what="fresh run"
[ -z "$mode" ] || what="resuming from $out.journal"
echo "ipsweep: $SPEC -> ${out:-?}: $what, $NP ranks, job ${PBS_JOBID:-?}, walltime ${wall:-unknown}, requeued $RESTARTS of at most $MAX_REQUEUE times"

# The launcher runs in the background so that the traps run at once (bash
# defers them while a foreground command runs). Whatever the signal, mpirun
# gets SIGUSR1, which it passes to every rank (SIGTERM it would answer by
# killing them a few seconds later).
pid="" signal="" timer=""
# shellcheck disable=SC2317 # run by the traps
forward() {
  signal=$1
  echo "ipsweep: SIG$1 at $(date '+%F %T'): the ranks save their tasks and stop"
  [ -z "$pid" ] || kill -USR1 "$pid" 2>/dev/null || true
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
# shellcheck disable=SC2086
mpirun -n "$NP" "$BIN" run "$SPEC" $mode --threads 1 "${tlimit[@]}" ${SET:-} &
pid=$!
if [ -n "$secs" ] && [ "$secs" -gt "$LEAD" ]; then
  (sleep $((secs - LEAD - SECONDS)) && kill -USR1 $$) 2>/dev/null &
  timer=$!
fi
rc=0
wait "$pid" || rc=$?
while [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; do
  rc=0
  wait "$pid" || rc=$?
done
trap '' USR1 TERM
[ -z "$timer" ] || kill "$timer" 2>/dev/null || true
[ "$rc" = "$INTERRUPTED" ] || exit "$rc"

# Stopped with every task saved. A SIGTERM before the walltime is a qdel:
# no new job then.
again="qsub the same command again to continue (it resumes)"
if [ "$signal" = TERM ] && { [ -z "$secs" ] || [ "$SECONDS" -lt $((secs - 10)) ]; }; then
  echo "ipsweep: interrupted by SIGTERM before the walltime (qdel?): no new job; $again" >&2
  exit "$INTERRUPTED"
fi
if [ "$RESTARTS" -ge "$MAX_REQUEUE" ]; then
  echo "ipsweep: interrupted, and this run was already requeued $RESTARTS times (IPSWEEP_MAX_REQUEUE=$MAX_REQUEUE): no new job; $again" >&2
  exit "$INTERRUPTED"
fi
# -V passes this environment on (SPEC, SET with its commas, IPSWEEP_*);
# the new job waits for this one to end.
export IPSWEEP_REQUEUE_COUNT=$((RESTARTS + 1))
if next=$(qsub -V ${wall:+-l walltime="$wall"} -W depend=afterany:"$PBS_JOBID" "$SCRIPT"); then
  echo "ipsweep: interrupted, tasks saved: submitted $next to continue ($IPSWEEP_REQUEUE_COUNT of at most $MAX_REQUEUE)"
  exit 0
fi
echo "ipsweep: qsub of $SCRIPT failed; $again" >&2
exit "$INTERRUPTED"
