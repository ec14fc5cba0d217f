/* Cost estimates of the kinds (seconds on one core, for --dry-run and
 * longest-first scheduling): one model of the core's speed for all of them. */
#ifndef RN_KINDS_COST_H
#define RN_KINDS_COST_H

#include "kinds.h"

/* Forward MFLOP per image of an architecture, as the model counts them
 * (ip_model_flops_per_sample: small-p on 1x28x28, the others on 3x32x32;
 * tests/test_sizing.c holds the two together). A task that only names a
 * model does not know its architecture and assumes small-p. */
double rn_arch_mflop(const char *arch);
#define RN_SMALL_P_MFLOP 14.9
/* Seconds for `images` images of `mflop` each, `passes` forward-equivalents:
 * ~60 GFLOP/s training-equivalent per core (docs/performance.md). */
double rn_seconds_for(double images, double mflop, double passes);
/* Images of a split the task sees (its limit, or 50,000 / 10,000). */
double rn_data_images(const rn_ctx *c, int train);

/* Typed values of a task by key name (0 / "" when the kind has no such key). */
long rn_val_i(const rn_task *t, const char *name);
double rn_val_f(const rn_task *t, const char *name);
const char *rn_val_text(const rn_task *t, const char *name);

#endif
