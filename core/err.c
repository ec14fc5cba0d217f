#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ip_fail(ip_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ip_failctx(ip_err *e, const char *fmt, ...) {
    if (e) {
        char prefix[256], old[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof old);
        /* truncation is acceptable: the message stays a valid prefix */
        size_t pl = strlen(prefix);
        if (pl > sizeof e->msg - 3) pl = sizeof e->msg - 3;
        memcpy(e->msg, prefix, pl);
        memcpy(e->msg + pl, ": ", 2);
        size_t room = sizeof e->msg - pl - 3, ol = strlen(old);
        if (ol > room) ol = room;
        memcpy(e->msg + pl + 2, old, ol);
        e->msg[pl + 2 + ol] = '\0';
    }
    return -1;
}
