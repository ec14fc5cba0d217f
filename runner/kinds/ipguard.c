/* The IPGuard kinds fingerprint and match as the runner schedules them.
 * Their keys: core/tasks/ipguard.c. */
#include "cost.h"

#include "../../core/ipguard/fingerprint.h" /* ip_fp_method: the `method` choice's index */

/* Models a point's iteration runs: the owner (ipguard), or the owner, its
 * surrogates and its references (cae: each set's members, counted in its
 * joined paths). */
static double fp_models(const rn_task *t) {
    if (rn_val_i(t, "method") != IP_FP_METHOD_CAE) return 1;
    double n = 1;
    for (const char *k[] = {"surrogates_path", "references_path"}, **q = k; q < k + 2; q++) {
        const char *paths = rn_task_get(t, *q);
        if (paths && *paths) n++;
        for (const char *p = paths; p && *p; p++) n += *p == IP_PATH_SET_SEP;
    }
    return n;
}

/* Adam steps a point takes: cae all `iterations`; ipguard ~100 on average (capped by max_iter). */
static double fp_iterations(const rn_task *t) {
    if (rn_val_i(t, "method") == IP_FP_METHOD_CAE) return (double)rn_val_i(t, "iterations");
    double iters = (double)rn_val_i(t, "max_iter");
    return iters > 100 ? 100 : iters;
}

/* The owner's architecture is unknown here: small-p's ~15 MFLOP per forward,
 * 3 forwards' worth per iteration and model (forward + backward to the inputs
 * and weights). */
static double fingerprint_cost(const rn_task *t, const rn_ctx *c) {
    double test = rn_data_images(c, 0);
    return (double)rn_val_i(t, "points") * (fp_iterations(t) + 1) * fp_models(t) * 3 * 15e6 / 60e9 +
           test * 15e6 / 60e9 + 0.5;
}

/* A step, for when it checkpoints between Adam iterations: one iteration
 * over a batch of points (batch 0: all of them). */
static double fingerprint_step_cost(const rn_task *t, const rn_ctx *c) {
    (void)c;
    double points = (double)rn_val_i(t, "points"), batch = (double)rn_val_i(t, "batch");
    return (batch > 0 && batch < points ? batch : points) * fp_models(t) * 3 * 15e6 / 60e9;
}

static double match_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    double test = rn_data_images(c, 0);
    return (test + 1000) * 15e6 / 60e9 + 0.2;
}

const rn_kind rn_kind_fingerprint = {&ip_fingerprint_def, RN_OUT_FINGERPRINT, fingerprint_cost, NULL, NULL,
                                     fingerprint_step_cost};
const rn_kind rn_kind_match = {&ip_match_def, RN_OUT_NONE, match_cost, NULL, NULL, NULL};
