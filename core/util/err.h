/* Error reporting for the core: functions return 0 on success and a negative
 * value on failure, filling an ip_err with a one-line message. Only main()
 * exits; a worker turns the message into a failed-task report. */
#ifndef IP_ERR_H
#define IP_ERR_H

/* The last byte of msg is not text (messages stop one byte earlier): it
 * holds the error's class, IP_ERR_INPUT when the failure is the input's
 * fault (a bad, truncated or inconsistent file or setting the user gave),
 * IP_ERR_RUNTIME otherwise (out of memory, a write that failed). It lives in
 * msg rather than in a field of its own so that `ip_err e = {{0}};`
 * everywhere stays a complete initialiser (a zeroed ip_err is a runtime
 * error with an empty message). */
typedef struct ip_err {
    char msg[512];
} ip_err;

#define IP_ERR_RUNTIME 0
#define IP_ERR_INPUT 1
/* Not a failure: the task was asked to stop (a signal, a time limit) and
 * saved its state, or had none worth saving; running it again resumes it. */
#define IP_ERR_INTERRUPTED 2

/* The exit status of a command that stopped because it was asked to (SIGTERM,
 * SIGUSR1, SIGINT) after saving what it had: EX_TEMPFAIL of sysexits.h,
 * "try again later". Job scripts requeue on it (docs/hpc.md). */
#define IP_EXIT_INTERRUPTED 75

/* Formats the message into e (when e is not NULL), class IP_ERR_RUNTIME, and
 * returns -1, so callers can write `return ip_fail(e, "...", ...);`. */
int ip_fail(ip_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ip_fail for a bad input: class IP_ERR_INPUT. */
int ip_fail_input(ip_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ip_fail for a task that stopped on request: class IP_ERR_INTERRUPTED. */
int ip_fail_interrupted(ip_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 when e says the task was interrupted (not a failure). */
int ip_err_is_interrupted(const ip_err *e);
/* Marks an existing message as a bad input (a reader's boundary); returns -1. */
int ip_err_mark_input(ip_err *e);
/* 1 when e is a bad-input error. */
int ip_err_is_input(const ip_err *e);
/* The exit status main() gives for e: 2 for a bad input, IP_EXIT_INTERRUPTED
 * for an interruption, 1 otherwise. */
int ip_err_exit_code(const ip_err *e);

/* Prefixes an existing message with context ("loading m.h5: <old message>")
 * and returns -1; the class is kept. */
int ip_failctx(ip_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
