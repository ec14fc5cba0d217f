/* Task kinds fingerprint and match (IPGuard, core/fingerprint.h,
 * docs/fingerprint.md). Their benchmark, `ipsweep bench fingerprint`, is
 * runner/bench/fingerprint.c.
 *
 * Wiring (done elsewhere): kinds.c lists &rn_kind_fingerprint and
 * &rn_kind_match in rn_kinds[]. */
#include <stdlib.h>

#include "../core/ckpt.h"
#include "../core/fingerprint.h"
#include "../core/rng.h"
#include "kinds.h"

/* ---------------- fingerprint ---------------- */

static const rn_key fingerprint_keys[] = {
    {"model", RN_T_MODEL, NULL, 0, 0, NULL, "the owner model whose classification boundary is fingerprinted"},
    {"points", RN_T_INT, "100", 1, 1e6, NULL, "K: seeds optimised into boundary points (converged ones are kept)"},
    {"k", RN_T_FLOAT, "1", 0, 1e6, NULL, "margin k in logits: the target label j beats the seed's label i by k"},
    {"init", RN_T_ENUM, "train", 0, 0, "train|noise", "seeds: training images, or uniform noise in the valid input range"},
    {"target", RN_T_ENUM, "random", 0, 0, "random|least-likely", "target label j (never the seed's label i)"},
    {"lr", RN_T_FLOAT, "0.01", 1e-9, 100, NULL, "Adam learning rate on the inputs (normalised units)"},
    {"max_iter", RN_T_INT, "1000", 0, 1e7, NULL, "Adam steps at most; a point still above zero loss is dropped"},
    {"batch", RN_T_INT, "0", 0, 1e6, NULL, "points optimised together in one forward/backward (0 = all, at most ~1 GB of activations)"},
    {"branch", RN_T_ENUM, "default", 0, 0, "default|public|private",
     "passport models: branch fingerprinted (default: public for v2/v3, what a thief deploys)"},
    {"seed", RN_T_INT, "1", 0, 2147483647, NULL, "seed images, noise and targets"},
    {"fpr", RN_T_FLOAT, "0.05", 0, 1, NULL,
     "verdicts: the matching-rate threshold is the smallest with at most this false-positive rate on the independent suspects (results /ipguard)"},
};

/* Rough seconds on one core. The task does not know the owner's architecture:
 * take small-p's ~15 MFLOP per forward, 3 forwards' worth per iteration
 * (forward + backward to the inputs and weights), ~100 iterations per point
 * on average (capped by max_iter), at ~60 GFLOP/s. */
static double fingerprint_cost(const rn_task *t, const rn_ctx *c) {
    double iters = (double)rn_param_i(t, "max_iter");
    if (iters > 100) iters = 100;
    double test = c->test_limit ? (double)c->test_limit : 10000.0;
    return (double)rn_param_i(t, "points") * (iters + 1) * 3 * 15e6 / 60e9 + test * 15e6 / 60e9 + 0.5;
}

static int parse_branch(const rn_task *t, int *out, ip_err *e) {
    if (ip_fp_branch_parse(rn_param_str(t, "branch"), out) != 0)
        return ip_fail(e, "bad branch \"%s\"", rn_param_str(t, "branch"));
    return 0;
}

static int fingerprint_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_fingerprint_task ft;
    ip_fingerprint_task_defaults(&ft);
    if (rn_copy_str(ft.model_path, sizeof ft.model_path, rn_param_str(t, "model_path"), "model path", e) ||
        rn_copy_str(ft.data, sizeof ft.data, c->data_source, "data.source", e) ||
        rn_copy_str(ft.out, sizeof ft.out, t->checkpoint, "fingerprint path", e))
        return -1;
    if (ip_fp_init_parse(rn_param_str(t, "init"), &ft.fp.init) != 0) return ip_fail(e, "bad init");
    if (ip_fp_target_parse(rn_param_str(t, "target"), &ft.fp.target) != 0) return ip_fail(e, "bad target");
    if (parse_branch(t, &ft.fp.branch, e) != 0) return -1;
    ft.train_limit = c->train_limit;
    ft.test_limit = c->test_limit;
    ft.fp.points = (size_t)rn_param_i(t, "points");
    ft.fp.margin = (float)rn_param_f(t, "k");
    ft.fp.lr = (float)rn_param_f(t, "lr");
    ft.fp.max_iter = (int)rn_param_i(t, "max_iter");
    ft.fp.batch = (int)rn_param_i(t, "batch");
    ft.fp.seed = (uint64_t)rn_param_i(t, "seed");
    return ip_task_fingerprint(&ft, out, e);
}

const rn_kind rn_kind_fingerprint = {
    "fingerprint",
    "IPGuard: K points just across the owner's classification boundary, saved as a fingerprint file "
    "(docs/fingerprint.md)",
    fingerprint_keys,
    RN_NKEYS(fingerprint_keys),
    RN_OUT_FINGERPRINT,
    fingerprint_cost,
    fingerprint_run,
    NULL,
    NULL};

/* ---------------- match ---------------- */

static const rn_key match_keys[] = {
    {"fingerprint", RN_T_FINGERPRINT, NULL, 0, 0, NULL, "the owner's fingerprint (a fingerprint entry)"},
    {"suspect", RN_T_MODEL, NULL, 0, 0, NULL, "the suspect model (a pirated copy or an independent model)"},
    {"branch", RN_T_ENUM, "default", 0, 0, "default|public|private",
     "passport suspects: branch queried (default: public for v2/v3)"},
};

static double match_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    double test = c->test_limit ? (double)c->test_limit : 10000.0;
    return (test + 1000) * 15e6 / 60e9 + 0.2;
}

static int match_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_match_task mt = {0};
    if (rn_copy_str(mt.fingerprint_path, sizeof mt.fingerprint_path, rn_param_str(t, "fingerprint_path"),
                    "fingerprint path", e) ||
        rn_copy_str(mt.suspect_path, sizeof mt.suspect_path, rn_param_str(t, "suspect_path"), "suspect path", e) ||
        rn_copy_str(mt.data, sizeof mt.data, c->data_source, "data.source", e))
        return -1;
    if (parse_branch(t, &mt.branch, e) != 0) return -1;
    mt.test_limit = c->test_limit;
    return ip_task_match(&mt, out, e);
}

const rn_kind rn_kind_match = {
    "match",
    "IPGuard: matching rate of a suspect model on a fingerprint (and the suspect's test accuracy)",
    match_keys,
    RN_NKEYS(match_keys),
    RN_OUT_NONE,
    match_cost,
    match_run,
    NULL,
    NULL};
