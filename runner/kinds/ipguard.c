/* The IPGuard kinds fingerprint and match as the runner schedules them.
 * Their keys: core/tasks/ipguard.c. */
#include "cost.h"

/* The owner's architecture is unknown here: small-p's ~15 MFLOP per forward,
 * 3 forwards' worth per iteration (forward + backward to the inputs and
 * weights), ~100 iterations per point on average (capped by max_iter). */
static double fingerprint_cost(const rn_task *t, const rn_ctx *c) {
    double iters = (double)rn_val_i(t, "max_iter");
    if (iters > 100) iters = 100;
    double test = rn_data_images(c, 0);
    return (double)rn_val_i(t, "points") * (iters + 1) * 3 * 15e6 / 60e9 + test * 15e6 / 60e9 + 0.5;
}

/* A step, for when it checkpoints between Adam iterations: one iteration
 * over a batch of points (batch 0: all of them). */
static double fingerprint_step_cost(const rn_task *t, const rn_ctx *c) {
    (void)c;
    double points = (double)rn_val_i(t, "points"), batch = (double)rn_val_i(t, "batch");
    return (batch > 0 && batch < points ? batch : points) * 3 * 15e6 / 60e9;
}

static double match_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    double test = rn_data_images(c, 0);
    return (test + 1000) * 15e6 / 60e9 + 0.2;
}

const rn_kind rn_kind_fingerprint = {&ip_fingerprint_def, RN_OUT_FINGERPRINT, fingerprint_cost, NULL, NULL,
                                     fingerprint_step_cost};
const rn_kind rn_kind_match = {&ip_match_def, RN_OUT_NONE, match_cost, NULL, NULL, NULL};
