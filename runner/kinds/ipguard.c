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
 * gap reaches k. Measured on the quick study's small-p owners (k = 1, 5, 20:
 * 57, 73, 600 on average): ~55 + 1.35 k^2, the larger k the more points
 * never reach the margin and run to max_iter (docs/fingerprint.md "Speed"). */
static double fp_iterations(const rn_task *t) {
    if (rn_val_i(t, "method") == IP_FP_METHOD_CAE) return (double)rn_val_i(t, "iterations");
    double iters = (double)rn_val_i(t, "max_iter"), k = rn_val_f(t, "k");
    double typical = 55 + 1.35 * k * k;
    return iters > typical ? typical : iters;
}

/* An Adam iteration is a forward and a backward to the input per model
 * (RN_INPUT_GRAD_PASS); then the owner's evaluation on the test split. */
static double fingerprint_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "model");
    return rn_train_seconds(arch, (double)rn_val_i(t, "points") * (fp_iterations(t) + 1) * fp_models(t),
                            RN_INPUT_GRAD_PASS) +
           rn_infer_seconds(arch, rn_data_images(c, 0)) + RN_TASK_FIXED_SECONDS;
}

/* A step, for when it checkpoints between Adam iterations: one iteration
 * over a batch of points (batch 0: all of them). */
static double fingerprint_step_cost(const rn_task *t, const rn_ctx *c) {
    double points = (double)rn_val_i(t, "points"), batch = (double)rn_val_i(t, "batch");
    return rn_train_seconds(rn_model_arch(t, c, "model"), (batch > 0 && batch < points ? batch : points) * fp_models(t),
                            RN_INPUT_GRAD_PASS);
}

/* The suspect on the fingerprint's points (its `points`, at most; 256 when
 * the fingerprint comes from outside the spec) and, for the first match of a
 * suspect on a worker, on the test split: the worker cache remembers the
 * suspect's accuracy for the others (core/io/cache.h). A quarter of the
 * matches evaluate it in the quick study (53 of 200 on 2 workers, 8
 * fingerprints per suspect), none when the suspect's checkpoint carries the
 * accuracy (rn_accuracy_recorded). No fixed part: the cache hands a warm
 * match its model and data by memcpy (measured: 0.025 s for a warm small-p
 * match of 200 points, 0.29 s for a cold one, quick study of 2026-12-06). */
#define MATCH_COLD_SHARE 0.25
static double match_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "suspect");
    const rn_task *fp = rn_producer(t, c, "fingerprint");
    double points = fp ? (double)rn_val_i(fp, "points") : 256;
    double cold = rn_accuracy_recorded(t, c, "suspect") ? 0 : MATCH_COLD_SHARE * rn_data_images(c, 0);
    return rn_infer_seconds(arch, points + cold);
}

const rn_kind rn_kind_fingerprint = {&ip_fingerprint_def, RN_OUT_FINGERPRINT, fingerprint_cost, NULL, NULL,
                                     fingerprint_step_cost};
const rn_kind rn_kind_match = {&ip_match_def, RN_OUT_NONE, match_cost, NULL, NULL, NULL};
