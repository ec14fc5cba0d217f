/* The kind noop: does nothing (scheduler benchmarks, tests of failure handling). */
#include <signal.h>
#include <time.h>

#include "param.h"

typedef struct ip_noop_task {
    double value;
    int fail, crash;
} ip_noop_task;

#define T ip_noop_task
static const ip_param noop_params[] = {
    P_FLOAT(T, "value", IP_F_DOUBLE, value, 0, -1e300, 1e300, "echoed back as the metric `value`"),
    P_BOOL(T, "fail", fail, false, "fail on purpose (tests of failure handling)"),
    P_BOOL(T, "crash", crash, false,
           "kill the process running it with SIGKILL, like the OOM killer (tests of the crash-twice rule)"),
};

static int noop_run(const void *p, ip_metrics *out, ip_err *e) {
    const T *t = p;
    if (t->fail) return ip_fail(e, "failed on purpose (fail: true)");
    if (t->crash) { /* after a moment, like a task that runs out of memory */
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        raise(SIGKILL);
    }
    return ip_metrics_set(out, "value", t->value, e);
}

const ip_task_def ip_noop_def = {
    .name = "noop",
    .doc = "does nothing (scheduler benchmarks and tests)",
    IP_ROWS(noop_params),
    .size = sizeof(T),
    .run = noop_run,
};
#undef T
