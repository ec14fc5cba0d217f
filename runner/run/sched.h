/* The scheduler: runs a spec's task graph, alone or across MPI ranks.
 *
 * Rank 0 is the coordinator: it keeps the ready tasks in a priority queue
 * (longest critical path first), hands batches of task ids to workers that
 * ask for work, and is the only rank that calls the hooks (journal, results
 * file, progress). Only the coordinator loads the spec: a task travels packed
 * with its typed values, results travel back packed (wire.h), and the data
 * section is broadcast once. Alone (no MPI, or one rank) the
 * coordinator runs every task itself. Waiting never spins: probes back off
 * from 20 us to 2 ms of sleep.
 *
 * Stopping on request (a signal: core/util/stop.h, runner/run/signals.c):
 * when the coordinator's stop flag is set or a worker reports an
 * interrupted task, it hands out nothing more and sends TAG_STOP to every
 * busy worker; a worker's long task sees it through the stop flag's poll
 * hook (every 50 ms at its resume points), saves its state and reports
 * RN_INTERRUPTED; tasks of a batch not yet begun are reported interrupted
 * without running. Once every worker is idle the coordinator tells them the
 * run stopped, and every rank's rn_sched_run returns 1.
 *
 * Progress inside a task: rn_run_task installs nothing itself; the serial
 * loop and the workers install core/util/progress.h's hook for the task they
 * run. Alone, a note reaches the progress hook at once (at most every
 * RN_NOTE_LOCAL seconds); a worker sends it to the coordinator (TAG_PROGRESS,
 * at most every RN_NOTE_SEND seconds, MPI_Isend from its own buffer, skipped
 * while the last one is still on its way: a worker never waits for it), and
 * the coordinator passes it on while it waits for requests (looking at most
 * every RN_NOTE_TAKE seconds). */
#ifndef RN_SCHED_H
#define RN_SCHED_H

#include "../../core/util/err.h"
#include "../../core/util/metrics.h"
#include "../kinds/kinds.h"
#include "../spec/spec.h"

/* What a worker reports for one task. */
typedef struct rn_result {
    int task;
    rn_status status;        /* RN_DONE, RN_FAILED or RN_INTERRUPTED (RN_SKIPPED from the coordinator) */
    int rank;
    double wall_seconds;
    char error[512];
    ip_metrics metrics;
} rn_result;

/* How far a running task is: the fraction of its current loop (core/util/progress.h) and the seconds since it
 * started on its rank. */
typedef struct rn_task_progress {
    int task;
    double fraction, seconds;
} rn_task_progress;

#define RN_NOTE_LOCAL 0.2
#define RN_NOTE_SEND 1.0
#define RN_NOTE_TAKE 0.1   /* the coordinator looks for notes at most this often (a probe costs the hand-out) */

typedef struct rn_sched_hooks {
    void *user;
    /* a task is handed to `rank`, alone or in a batch with others (journal it: crash detection) */
    int (*started)(void *user, const rn_task *t, int rank, int alone, ip_err *e);
    /* results arrived (n of them, possibly skipped tasks too, never interrupted ones); the hook may keep nothing:
     * copy what it needs */
    int (*finished)(void *user, const rn_result *const *r, int n, ip_err *e);
    /* called at least every ~0.5 s by the coordinator while it waits (progress, periodic results flush) */
    int (*tick)(void *user, ip_err *e);
    /* optional: 1 when a task must be handed out alone (it was running when a
     * rank died: alone, a second crash shows whether it is the culprit) */
    int (*alone)(void *user, const rn_task *t);
    /* optional: a task stopped on request (RN_INTERRUPTED: r->error says where, and where its state is); it
     * goes back to pending */
    int (*interrupted)(void *user, const rn_result *r, ip_err *e);
    /* optional: a running task's progress (only for tasks the coordinator has as running) */
    void (*progress)(void *user, const rn_task_progress *p);
} rn_sched_hooks;

typedef struct rn_sched_opts {
    int max_batch;           /* most task ids in one hand-out (default 64) */
    double batch_seconds;    /* hand out tasks until their estimated cost reaches this (default 0.05) */
} rn_sched_opts;

/* Runs every task whose status[] is RN_PENDING; status[] (ntasks) is updated
 * in place (DONE/FAILED/SKIPPED). A task whose dependency did not end DONE is
 * skipped with an error naming it. Under MPI every rank calls this (workers
 * with spec NULL: they get what they need from the coordinator); workers
 * return when the coordinator is done. Returns 0 when every task ended, 1
 * when the run stopped on request (interrupted tasks are RN_PENDING again in
 * status[]), -1 only on a scheduler error (hook failure, MPI error), not
 * when tasks fail. */
int rn_sched_run(const rn_spec *spec, const rn_ctx *ctx, rn_status *status, const rn_sched_hooks *hooks,
                 const rn_sched_opts *opts, ip_err *e);

/* Runs one task here and fills r (used by the serial path and the workers).
 * After a stop request it runs nothing: r is RN_INTERRUPTED. */
void rn_run_task(const rn_task *t, const rn_ctx *ctx, rn_result *r);

#endif
