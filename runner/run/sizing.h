/* Sizing a run against a job's time limit: readable durations, the
 * --time-limit parser, the threads speedup model, and the warnings that
 * `run --dry-run` and the start of a real run print (rank 0, stderr).
 * The cost model itself (seconds on one core per task): runner/kinds/cost.h. */
#ifndef RN_SIZING_H
#define RN_SIZING_H

#include <stddef.h>
#include <stdio.h>

#include "../kinds/kinds.h"
#include "../spec/spec.h"

/* Amdahl's parallel fraction of a task's one-core cost: on n threads it takes
 * cost * ((1 - p) + p / n). Measured with `ipsweep bench train --batch 64
 * --threads 1|2` on a shared 2-core Xeon (docs/performance.md, "Sizing"). */
#define RN_PARALLEL_FRACTION 0.6

/* A duration for people, at most two units besides days: "0.4s", "45s",
 * "12m 5s", "3h 20m", "1d 3h 20m" (a trailing zero unit is left out: "2h",
 * "1d"); "?" for a negative or NaN value. Returns out. */
const char *rn_format_duration(double seconds, char *out, size_t cap);

/* A job's time limit: Slurm's formats "M", "M:S", "H:M:S", "D-H", "D-H:M",
 * "D-H:M:S" (whole numbers; after the first field minutes and seconds are
 * below 60 and hours after days below 24), a number with a unit "3600s",
 * "90m", "2h", "1.5d", or "UNLIMITED"/"INFINITE" (squeue's words: no limit,
 * *seconds = 0). Returns 0, or -1 with a one-line reason in msg. */
int rn_parse_time_limit(const char *text, double *seconds, char *msg, size_t cap);

/* What the estimates assume of a rank. */
typedef struct rn_sizing {
    int threads;          /* a rank's threads (--threads or its default): a task's unless its entry says */
    int cores;            /* a rank's cores (rn_rank_cores): more threads than that run no faster */
    int workers;          /* ranks that run tasks */
    double limit;         /* the job's time limit in seconds (0: none) */
    rn_ctx ctx;           /* the spec's data section (rn_spec_ctx), for the kinds' step costs */
} rn_sizing;

/* z for spec s: threads and workers of a rank, the limit (0: none). */
void rn_sizing_init(rn_sizing *z, const rn_spec *s, int threads, int workers, double limit);

/* A rank's cores: SLURM_CPUS_PER_TASK when Slurm sets it; alone, the
 * machine's online cores; else (mpirun without Slurm) the rank's threads. */
int rn_rank_cores(int threads);
/* Threads a task runs with: its entry's `threads`, else the rank's. */
int rn_task_threads(const rn_task *t, const rn_sizing *z);
/* Wall seconds of `cost` one-core seconds on `threads` threads of a rank
 * with `cores` cores (Amdahl, RN_PARALLEL_FRACTION; no gain past the cores). */
double rn_wall_seconds(double cost, int threads, int cores);
/* A task's estimated wall seconds, and those of its longest step (the
 * longest stretch between two points it can checkpoint at: the whole task
 * for a kind without step_cost). */
double rn_task_wall(const rn_task *t, const rn_sizing *z);
double rn_task_step_wall(const rn_task *t, const rn_sizing *z);

/* The warnings against z->limit (skipping tasks whose status is RN_DONE when
 * status is not NULL): tasks longer than the limit that checkpoint (how many
 * job lengths they need), that cannot (never finish), a step longer than the
 * limit (never progresses), the whole run in job lengths; and tasks asking
 * for more threads than a rank has cores. At most RN_SIZING_LIST tasks are
 * named per warning. Returns the number of warnings printed. */
#define RN_SIZING_LIST 10
int rn_sizing_report(const rn_spec *s, const rn_sizing *z, const rn_status *status, FILE *f);

/* `run --dry-run`: every task with its estimate and dependencies, the totals
 * per kind, the critical path and the wall time on z's workers (stdout); then
 * rn_sizing_report (stderr). runner/run/dry_run.c. */
void rn_print_dry_run(const rn_spec *s, const rn_sizing *z);

#endif
