/* Error reporting for the core: functions return 0 on success and a negative
 * value on failure, filling an ip_err with a one-line message. Only main()
 * exits; a worker turns the message into a failed-task report. */
#ifndef IP_ERR_H
#define IP_ERR_H

typedef struct ip_err {
    char msg[512];
} ip_err;

/* Formats the message into e (when e is not NULL) and returns -1, so callers
 * can write `return ip_fail(e, "...", ...);`. */
int ip_fail(ip_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with context ("loading m.h5: <old message>")
 * and returns -1. */
int ip_failctx(ip_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
