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

/* Adam steps a point takes: cae all `iterations`; ipguard until its logit
 * gap reaches k, which takes longer the larger k (measured on small-p:
 * ~20 + 10k, capped by max_iter). */
static double fp_iterations(const rn_task *t) {
    if (rn_val_i(t, "method") == IP_FP_METHOD_CAE) return (double)rn_val_i(t, "iterations");
    double iters = (double)rn_val_i(t, "max_iter"), k = rn_val_f(t, "k");
    double typical = 20 + 10 * k;
    return iters > typical ? typical : iters;
}

/* An Adam iteration is a forward and a backward to the input per model: a
 * training pass's cost; then the owner's evaluation on the test split. */
static double fingerprint_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "model");
    return rn_train_seconds(arch, (double)rn_val_i(t, "points") * (fp_iterations(t) + 1) * fp_models(t), 1) +
           rn_infer_seconds(arch, rn_data_images(c, 0)) + RN_TASK_FIXED_SECONDS;
}

/* A step, for when it checkpoints between Adam iterations: one iteration
 * over a batch of points (batch 0: all of them). */
static double fingerprint_step_cost(const rn_task *t, const rn_ctx *c) {
    double points = (double)rn_val_i(t, "points"), batch = (double)rn_val_i(t, "batch");
    return rn_train_seconds(rn_model_arch(t, c, "model"), (batch > 0 && batch < points ? batch : points) * fp_models(t), 1);
}

/* the suspect on the test split and on the fingerprint's points */
static double match_cost(const rn_task *t, const rn_ctx *c) {
    return rn_infer_seconds(rn_model_arch(t, c, "suspect"), rn_data_images(c, 0) + 1000) + RN_TASK_FIXED_SECONDS;
}

const rn_kind rn_kind_fingerprint = {&ip_fingerprint_def, RN_OUT_FINGERPRINT, fingerprint_cost, NULL, NULL,
                                     fingerprint_step_cost};
const rn_kind rn_kind_match = {&ip_match_def, RN_OUT_NONE, match_cost, NULL, NULL, NULL};
