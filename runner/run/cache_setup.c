/* The environment's say on the worker cache (cache_setup.h). */
#include "cache_setup.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/io/cache.h"
#include "../../core/model/evalrec.h"

int rn_cache_budget_from_env(size_t *bytes, ip_err *e) {
    const char *off = getenv("IPSWEEP_NO_CACHE");
    *bytes = 0;
    if (off && off[0] && strcmp(off, "0") != 0) return 0;
    const char *mb = getenv("IPSWEEP_CACHE_MB");
    unsigned long long v = IP_CACHE_DEFAULT_MB;
    if (mb && mb[0]) {
        char *end;
        errno = 0;
        v = strtoull(mb, &end, 10);
        if (errno || *end || mb[0] == '-' || v > SIZE_MAX / (1024 * 1024))
            return ip_fail_input(e, "IPSWEEP_CACHE_MB=\"%s\": expected a number of MiB (0 turns the cache off)", mb);
    }
    *bytes = (size_t)v * 1024 * 1024;
    return 0;
}

/* One switch for every reuse of earlier work: the cache's budget (when the
 * process has a worker cache) and the evaluation records, on unless it is 0. */
static int reuse_setup(int with_cache, ip_err *e) {
    size_t bytes;
    if (rn_cache_budget_from_env(&bytes, e) != 0) return -1;
    if (with_cache) ip_cache_configure(bytes);
    ip_eval_records_use(bytes > 0);
    return 0;
}

int rn_cache_setup(ip_err *e) { return reuse_setup(1, e); }

int rn_eval_records_setup(ip_err *e) { return reuse_setup(0, e); }

void rn_cache_teardown(void) {
    ip_cache_configure(0);
    ip_eval_records_use(1);
}
