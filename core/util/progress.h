/* How far the running task is, for people watching a run. A long task's
 * loop says where it is at its natural steps (a training step, a block of
 * fake passports, a fingerprint iteration) with ip_progress_note; the runner
 * installs the one process-wide hook that passes it on (to the progress bar
 * alone, to the coordinator from an MPI worker: runner/run/sched.c). Like
 * stop.h's poll hook: the core knows nothing of MPI or terminals.
 *
 * Notes are cheap (a clock read when a hook is installed, nothing when none
 * is) and rate-limited here, so a loop may note every step. A task with
 * several loops notes each from 0 again: the fraction is the current loop's. */
#ifndef IP_PROGRESS_H
#define IP_PROGRESS_H

/* fraction in [0, 1] of the current loop. */
typedef void (*ip_progress_fn)(void *user, double fraction);

/* Installs fn (NULL removes it), called at most every `interval` seconds
 * (0: at every note) and at once on the first note after it is set or reset. */
void ip_progress_set_hook(ip_progress_fn fn, void *user, double interval);
/* A new task begins: its first note is passed on at once. */
void ip_progress_reset(void);
/* done of total units of the current loop (any unit: samples, passports,
 * Adam steps); ignored when total is not positive. */
void ip_progress_note(double done, double total);

#endif
