/* SIGTERM (a time limit, scancel), SIGUSR1 (Slurm's warning ahead of the
 * limit: sbatch --signal) and SIGINT (Ctrl-C) request a stop: the running
 * long tasks save their state and the command exits IP_EXIT_INTERRUPTED
 * (75) after writing what it has (core/util/stop.h; docs/hpc.md). A second
 * Ctrl-C quits at once, without saving. */
#ifndef RN_SIGNALS_H
#define RN_SIGNALS_H

/* Installs the handlers. announce: print one line on stderr when the first
 * signal arrives (the process that talks to the user: rank 0). */
void rn_signals_install(int announce);
/* "SIGTERM", "SIGUSR1", "SIGINT" (or "a signal"): the signal that asked to stop. */
const char *rn_signal_name(int sig);

#endif
