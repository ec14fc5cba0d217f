/* The running task's progress hook (progress.h). */
#include "progress.h"

#include "proc.h"

static ip_progress_fn hook;
static void *hook_user;
static double hook_interval, last_call = -1;

void ip_progress_set_hook(ip_progress_fn fn, void *user, double interval) {
    hook = fn, hook_user = user, hook_interval = interval > 0 ? interval : 0;
    last_call = -1;
}

void ip_progress_reset(void) { last_call = -1; }

void ip_progress_note(double done, double total) {
    if (!hook || !(total > 0)) return;
    double now = ip_now_s();
    if (last_call >= 0 && now - last_call < hook_interval) return;
    last_call = now;
    double f = done / total;
    hook(hook_user, !(f > 0) ? 0 : f > 1 ? 1 : f); /* NaN: 0 */
}
