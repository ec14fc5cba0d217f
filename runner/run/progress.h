/* Progress on stderr, on the coordinator: one line per finished task, plus a
 * status line (done/running/failed of total, the work done, the running
 * tasks' own progress, ETA).
 *
 * On a terminal the status line is a bar redrawn in place (at most every
 * RN_STATUS_REDRAW seconds), moving during long tasks with the notes their
 * loops send (core/util/progress.h, through the scheduler: sched.h). In a log
 * (no terminal: mpirun, a batch job) it is a line of its own, printed when a
 * task finished or a running task moved, at most every RN_STATUS_EVERY
 * seconds (or a hundredth of the time the run has taken, up to
 * RN_STATUS_QUIET: a day's log holds ~1,500 of them), and every
 * RN_STATUS_QUIET seconds when nothing moved. A run of
 * more than RN_PROGRESS_TASK_LINES tasks prints task lines for failures only
 * (a million lines help nobody; the results file has every task).
 *
 * The ETA is the cost model's (rn_task_wall) corrected by the speed measured
 * in this run (rn_eta_seconds), as h:mm:ss. */
#ifndef RN_PROGRESS_H
#define RN_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "../../core/util/err.h"
#include "sched.h"
#include "sizing.h"

#define RN_PROGRESS_TASK_LINES 10000
#define RN_STATUS_REDRAW 0.2
#define RN_STATUS_EVERY 5.0
#define RN_STATUS_QUIET 60.0

/* ---- the ETA, a pure function (tests/test_progress.c) ----
 * speed = measured / estimated (1 when nothing was measured yet: the cost
 * model as it is); ETA = speed * max(left / workers, longest): the work left
 * shared by the workers, but never less than the longest running task's rest
 * (a task runs on one rank), nor less than the tasks left at the best rate
 * tasks ever finished (tiny tasks cost their hand-out and journal more than
 * their estimate). When the cost model says nothing (every estimate 0) the
 * tasks' rate so far gives it. */
typedef struct rn_eta_in {
    double left;           /* estimated seconds of the tasks not finished, less the done part of running ones */
    double longest;        /* estimated seconds left of the running task with the most left */
    double measured;       /* seconds the work done in this run took (finished tasks, running ones' done part) */
    double estimated;      /* the cost model's seconds for that same work */
    int workers;           /* ranks running tasks */
    int tasks_left;        /* tasks not finished */
    int tasks_done;        /* tasks finished in this run */
    double elapsed;        /* seconds since this run started */
    double peak_rate;      /* the most tasks finished per second over RN_RATE_WINDOW (0: none yet) */
} rn_eta_in;

/* A window's rate counts when it holds RN_RATE_MIN_TASKS tasks at least: one
 * long task in a window says nothing of what the hand-out can do. */
#define RN_RATE_WINDOW 1.0
#define RN_RATE_MIN_TASKS 50

/* Seconds, or -1 when unknown (tasks left but neither estimates nor a rate). */
double rn_eta_seconds(const rn_eta_in *in);

/* h:mm:ss (hours unbounded: "27:03:00"); "?" when s is negative or NaN. Returns out. */
const char *rn_format_hms(double s, char *out, size_t cap);

/* The command that continues a stopped run: "ipsweep run" and the run's
 * arguments (argv[0..argc): what followed `run`, --set overrides included, --force and
 * --resume left out) and --resume; an argument with a character the shell
 * reads is single-quoted. Returns out. */
const char *rn_resume_command(char *out, size_t cap, int argc, char **argv);

/* ---- the coordinator's progress ---- */

typedef struct rn_progress_run { /* a running task */
    int task;
    int noted;             /* a note came */
    float fraction, seconds;
    float fraction0, seconds0; /* at its first note (a task resumed from its state starts past 0) */
} rn_progress_run;

typedef struct rn_progress {
    FILE *f;
    int tty, width;        /* width: the terminal's columns */
    int total, done, failed, skipped, running, resumed;
    double t0, last_status;
    int quiet_tasks;       /* no per-task lines for done tasks (large runs) */
    int changed;           /* a task finished or moved since the last status line */
    int workers;
    float *est;            /* per task: estimated wall seconds (rn_task_wall) */
    int *slot;             /* per task: its index in run[], -1 when not running */
    rn_progress_run *run;
    int nrun, caprun;
    double est_all, est_finished; /* the cost model's seconds: of every task, of the finished ones */
    double measured, estimated;   /* work done in this run: seconds it took, seconds the cost model gave it */
    double win_t0, peak_rate;     /* the current rate window's start, the best rate of a whole window */
    int win_n;                    /* tasks finished in the current window */
} rn_progress;

/* How the status shows: a bar redrawn in place on a terminal, log lines
 * elsewhere (auto); or either one anyway (`run --progress bar|lines`: under
 * mpirun rank 0's stderr is a pipe even when mpirun's is a terminal). */
typedef enum { RN_PROGRESS_AUTO = 0, RN_PROGRESS_BAR, RN_PROGRESS_LINES } rn_progress_style;
#define RN_PROGRESS_STYLES "auto|bar|lines"
int rn_progress_style_parse(const char *text, rn_progress_style *out); /* 0, or -1 for an unknown name */
void rn_progress_set_style(rn_progress *p, rn_progress_style style);

/* status: what is finished already (resumed), NULL: nothing; z: the run's
 * threads, cores and workers for the estimates. */
int rn_progress_init(rn_progress *p, FILE *f, const rn_spec *s, const rn_status *status, const rn_sizing *z,
                     ip_err *e);
void rn_progress_free(rn_progress *p);
void rn_progress_started(rn_progress *p, const rn_task *t);
void rn_progress_finished(rn_progress *p, const rn_task *t, const rn_result *r);
/* A running task's note (the scheduler's progress hook). */
void rn_progress_note(rn_progress *p, const rn_task_progress *n);
/* A task stopped on request (always a line: where it stopped, where its state is). */
void rn_progress_interrupted(rn_progress *p, const rn_task *t, const rn_result *r);
/* Status line now if due (force: always). */
void rn_progress_status(rn_progress *p, int force);
/* The status line's text at time now, without terminal codes: for a log, or
 * (bar) what follows the bar, the percentage and ETA first. Returns out. */
const char *rn_progress_line(const rn_progress *p, double now, int bar, char *out, size_t cap);
/* Final status line. */
void rn_progress_summary(rn_progress *p);

#endif
