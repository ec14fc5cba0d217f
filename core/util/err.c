#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CLASS_BYTE (sizeof(((ip_err *)0)->msg) - 1)

static void vfail(ip_err *e, char cls, const char *fmt, va_list ap) {
    vsnprintf(e->msg, CLASS_BYTE, fmt, ap);
    e->msg[CLASS_BYTE] = cls;
}

/* ip_fail, ip_fail_input, ip_fail_interrupted: one body, three classes. */
#define FAIL_WITH_CLASS(name, cls)                                                                                 \
    int name(ip_err *e, const char *fmt, ...) {                                                                    \
        if (e) {                                                                                                   \
            va_list ap;                                                                                            \
            va_start(ap, fmt);                                                                                     \
            vfail(e, cls, fmt, ap);                                                                                \
            va_end(ap);                                                                                            \
        }                                                                                                          \
        return -1;                                                                                                 \
    }
FAIL_WITH_CLASS(ip_fail, IP_ERR_RUNTIME)
FAIL_WITH_CLASS(ip_fail_input, IP_ERR_INPUT)
FAIL_WITH_CLASS(ip_fail_interrupted, IP_ERR_INTERRUPTED)

int ip_err_is_interrupted(const ip_err *e) { return e && e->msg[CLASS_BYTE] == IP_ERR_INTERRUPTED; }

int ip_err_mark_input(ip_err *e) {
    if (e) e->msg[CLASS_BYTE] = IP_ERR_INPUT;
    return -1;
}

int ip_err_is_input(const ip_err *e) { return e && e->msg[CLASS_BYTE] == IP_ERR_INPUT; }

int ip_err_exit_code(const ip_err *e) {
    return ip_err_is_input(e) ? 2 : ip_err_is_interrupted(e) ? IP_EXIT_INTERRUPTED : 1;
}

int ip_failctx(ip_err *e, const char *fmt, ...) {
    if (e) {
        char prefix[256], old[sizeof e->msg], cls = e->msg[CLASS_BYTE];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof old);
        old[CLASS_BYTE] = '\0'; /* a message written without ip_fail may fill the buffer */
        /* truncation is acceptable: the message stays a valid prefix */
        size_t pl = strlen(prefix);
        if (pl > CLASS_BYTE - 3) pl = CLASS_BYTE - 3;
        memcpy(e->msg, prefix, pl);
        memcpy(e->msg + pl, ": ", 2);
        size_t room = CLASS_BYTE - pl - 3, ol = strlen(old);
        if (ol > room) ol = room;
        memcpy(e->msg + pl + 2, old, ol);
        e->msg[pl + 2 + ol] = '\0';
        e->msg[CLASS_BYTE] = cls;
    }
    return -1;
}
