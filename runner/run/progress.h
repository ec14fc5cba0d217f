/* Progress on stderr: one line per finished task, plus a status line
 * (done/running/failed of total, rate, ETA) — redrawn in place on a terminal,
 * printed every `interval` seconds in a batch log. A run of more than
 * RN_PROGRESS_TASK_LINES tasks prints task lines for failures only (a million
 * lines help nobody; the results file has every task). */
#ifndef RN_PROGRESS_H
#define RN_PROGRESS_H

#include <stdio.h>

#include "sched.h"

typedef struct rn_progress {
    FILE *f;
    int tty;
    int total, done, failed, skipped, running, resumed;
    double t0, last_status;
    double interval;       /* seconds between status lines in a log (default 30) */
    int quiet_tasks;       /* no per-task lines for done tasks (bench dispatch, large runs) */
} rn_progress;

#define RN_PROGRESS_TASK_LINES 10000

void rn_progress_init(rn_progress *p, FILE *f, int total, int already_done);
void rn_progress_started(rn_progress *p);
void rn_progress_finished(rn_progress *p, const rn_task *t, const rn_result *r);
/* A task stopped on request (always a line: where it stopped, where its state is). */
void rn_progress_interrupted(rn_progress *p, const rn_task *t, const rn_result *r);
/* Status line now if due (force: always). */
void rn_progress_status(rn_progress *p, int force);
/* Final summary line. */
void rn_progress_summary(rn_progress *p);

#endif
