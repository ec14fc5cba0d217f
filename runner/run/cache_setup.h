/* The worker's cache of datasets and checkpoints (core/io/cache.h) from the
 * environment: IPSWEEP_NO_CACHE=1 turns it off, IPSWEEP_CACHE_MB=N sets its
 * budget per rank (default IP_CACHE_DEFAULT_MB; 0 also turns it off). */
#ifndef RN_CACHE_SETUP_H
#define RN_CACHE_SETUP_H

#include <stddef.h>

#include "../../core/util/err.h"

/* The budget in bytes the environment asks for (0: off); a malformed
 * IPSWEEP_CACHE_MB is a bad input. */
int rn_cache_budget_from_env(size_t *bytes, ip_err *e);
/* Turns the cache on as the environment says (before a rank's first task),
 * and the evaluation records (core/model/evalrec.h) with it. */
int rn_cache_setup(ip_err *e);
/* The evaluation records alone, as the same switch says (a process without a
 * worker cache: `ipsweep task`). */
int rn_eval_records_setup(ip_err *e);
/* Drops the cache and turns it off (after a rank's last task). */
void rn_cache_teardown(void);

#endif
