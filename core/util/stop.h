/* A request to stop soon: a signal (SIGTERM at a time limit, SIGUSR1 ahead
 * of it, Ctrl-C) or, on an MPI worker, the coordinator's word. Long tasks
 * look at it between steps: they save their state (core/tasks/resume.h) and
 * return IP_ERR_INTERRUPTED. The core installs no handler: main does
 * (runner/run/signals.c), and calls ip_stop_request from it.
 *
 * One flag per process, because a signal is per process. */
#ifndef IP_STOP_H
#define IP_STOP_H

/* Sets the flag. Async-signal-safe: call it from a signal handler. sig is
 * remembered for messages (0 = not a signal). */
void ip_stop_request(int sig);
/* 1 once a stop was requested: the flag, or the poll hook saying so (asked
 * at most every `interval` seconds; its yes is kept). */
int ip_stop_requested(void);
/* The signal that requested the stop (0 when none or not a signal). */
int ip_stop_signal(void);
/* A function asked by ip_stop_requested at most every interval seconds
 * (an MPI worker probing for the coordinator's stop message: 0.05; a test
 * stopping at the k-th point: 0); NULL removes it. Not for signal handlers. */
void ip_stop_set_poll(int (*poll)(void *user), void *user, double interval);
/* Clears the flag (tests; a resumed task in the same process). */
void ip_stop_clear(void);

#endif
