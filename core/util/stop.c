/* The process's stop request (stop.h). */
#include "stop.h"

#include <signal.h>

#include "proc.h"

static volatile sig_atomic_t requested, by_signal;
static int (*poll_fn)(void *);
static void *poll_user;
static double last_poll, poll_interval;

void ip_stop_request(int sig) {
    if (!requested) by_signal = sig; /* the first says why (a job script may pass the signal on as another) */
    requested = 1;
}

int ip_stop_requested(void) {
    if (requested) return 1;
    if (poll_fn) {
        double now = ip_now_s();
        if (poll_interval <= 0 || now - last_poll >= poll_interval) {
            last_poll = now;
            if (poll_fn(poll_user)) requested = 1;
        }
    }
    return requested != 0;
}

int ip_stop_signal(void) { return by_signal; }

void ip_stop_set_poll(int (*poll)(void *user), void *user, double interval) {
    poll_fn = poll, poll_user = user, poll_interval = interval;
    last_poll = 0;
}

void ip_stop_clear(void) { requested = 0, by_signal = 0; }
