/* The IPGuard kinds fingerprint and match (docs/fingerprint.md): their
 * parameter tables, then their task code on core/ipguard/fingerprint.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/cache.h"
#include "../io/ckpt.h"
#include "../ipguard/cae.h"
#include "../ipguard/fingerprint.h"
#include "../model/train.h"
#include "param.h"
#include "tasks.h"

/* branch: "default" resolves per model (ip_fp_resolve_branch) */
static const int branch_values[] = {-1, IP_BRANCH_PUBLIC, IP_BRANCH_PRIVATE};

/* ---------------- fingerprint ---------------- */

#define T ip_fingerprint_task
static const ip_param fingerprint_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the owner model whose classification boundary is fingerprinted"),
    P_ENUM(T, "method", fp.method, "ipguard", "ipguard|cae", NULL,
           "ipguard: points just across the owner's boundary (Cao et al.); cae: conferrable adversarial examples "
           "(Lukas et al., ICLR 2021), made with `surrogates` and `references`"),
    P_SET(T, "surrogates", IP_P_COPIES, surrogates,
          "cae: the defender's surrogates, models derived from the owner (e.g. distill or extract entries)"),
    P_SET(T, "references", IP_P_OTHERS, references,
          "cae: the defender's reference models, trained independently of the owner"),
    P_INT(T, "points", IP_F_SIZE, fp.points, 100, 1, 1e6, "K: seeds optimised into boundary points (converged ones are kept)"),
    P_FLOAT(T, "k", IP_F_FLOAT, fp.margin, 1, 0, 1e6, "margin k in logits: the target label j beats the seed's label i by k"),
    P_ENUM(T, "init", fp.init, "train", "train|noise", NULL,
           "seeds: training images, or uniform noise in the valid input range"),
    P_ENUM(T, "target", fp.target, "random", "random|least-likely", NULL, "target label j (never the seed's label i)"),
    P_FLOAT(T, "lr", IP_F_FLOAT, fp.lr, 0.01, 1e-9, 100, "Adam learning rate on the inputs (normalised units)"),
    P_INT(T, "max_iter", IP_F_INT, fp.max_iter, 1000, 0, 1e7, "Adam steps at most; a point still above zero loss is dropped"),
    P_INT(T, "batch", IP_F_INT, fp.batch, 0, 0, 1e6,
          "points optimised together in one forward/backward (0 = all, at most ~1 GB of activations)"),
    P_ENUM(T, "branch", fp.branch, "default", "default|public|private", branch_values,
           "passport models: branch fingerprinted (default: public for v2/v3, what a thief deploys)"),
    P_INT(T, "seed", IP_F_U64, fp.seed, 1, 0, 2147483647, "seed images, noise and targets (cae: and the dropout)"),
    P_FLOAT(T, "eps", IP_F_FLOAT, fp.cae.eps, 0.1, 0, 1, "cae: L-inf radius around the seed image, in [0, 1] pixel units"),
    P_INT(T, "iterations", IP_F_INT, fp.cae.iterations, 100, 0, 1e6, "cae: Adam steps (all taken; `lr` is their rate)"),
    P_FLOAT(T, "alpha", IP_F_FLOAT, fp.cae.alpha, 1, 0, 1e6, "cae: weight of the conferrability term H(1, max E)"),
    P_FLOAT(T, "beta", IP_F_FLOAT, fp.cae.beta, 1, 0, 1e6,
            "cae: weight of the owner's misclassification term -H(M(x0), M(x))"),
    P_FLOAT(T, "gamma", IP_F_FLOAT, fp.cae.gamma, 1, 0, 1e6,
            "cae: weight of the term H(M(x), mean surrogate output) tying E's class to the owner's"),
    P_FLOAT(T, "dropout", IP_F_FLOAT, fp.cae.dropout, 0.3, 0, 0.99,
            "cae: probability a surrogate or reference sits out an Adam step"),
    P_FLOAT(T, "tau", IP_F_FLOAT, fp.cae.tau, 0.85, 0, 1,
            "cae: a point is kept when its conferrability score reaches tau (and the owner misclassifies it)"),
    /* read by the results' verdicts (runner/run/ipguard_summary.c), not by the task */
    {"fpr", IP_P_FLOAT, IP_F_NONE, 0, 0, "0.05", 0.05, 0, 1, NULL, NULL,
     "verdicts: the matching-rate threshold is the smallest with at most this false-positive rate on the independent "
     "suspects (results /ipguard)"},
};
_Static_assert(IP_FP_INIT_TRAIN == 0 && IP_FP_INIT_NOISE == 1, "choices in enum order");
_Static_assert(IP_FP_METHOD_IPGUARD == 0 && IP_FP_METHOD_CAE == 1, "choices in enum order");
_Static_assert(1 + 2 * IP_MAX_MODEL_SET <= IP_FP_MAX_MODELS, "a generation runs the owner and both sets");

/* cae needs both sets, and seeds from training images; ipguard uses neither set. */
static int fingerprint_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    (void)shape;
    const T *t = p;
    if (t->fp.method == IP_FP_METHOD_CAE) {
        if (!t->surrogates[0] || !t->references[0]) {
            *key = t->surrogates[0] ? "references" : "surrogates";
            snprintf(msg, cap, "method cae needs surrogates and references");
            return -1;
        }
        if (t->fp.init != IP_FP_INIT_TRAIN) {
            *key = "init";
            snprintf(msg, cap, "method cae starts from training images (init: train)");
            return -1;
        }
    } else if (t->surrogates[0] || t->references[0]) {
        *key = t->surrogates[0] ? "surrogates" : "references";
        snprintf(msg, cap, "surrogates and references are for method cae");
        return -1;
    }
    return 0;
}
_Static_assert(IP_FP_TARGET_RANDOM == 0 && IP_FP_TARGET_LEAST == 1, "choices in enum order");

static void fingerprint_init(void *p) { ip_fp_defaults(&((T *)p)->fp); }
static int fingerprint_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fingerprint(t, out, e); }
const ip_task_def ip_fingerprint_def = {
    .name = "fingerprint",
    .doc = "a fingerprint of the owner saved as a file: IPGuard's points just across its classification boundary, or "
           "conferrable adversarial examples (method cae; docs/fingerprint.md)",
    IP_ROWS(fingerprint_params),
    .size = sizeof(T),
    .init = fingerprint_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .at_resume = IP_AT(T, resume),
    .check = fingerprint_check,
    .run = fingerprint_run,
};
#undef T

/* ---------------- match ---------------- */

#define T ip_match_task
static const ip_param match_params[] = {
    P_REF(T, "fingerprint", IP_P_FINGERPRINT, fingerprint_path, NULL, "the owner's fingerprint (a fingerprint entry)"),
    P_REF(T, "suspect", IP_P_MODEL, suspect_path, NULL, "the suspect model (a pirated copy or an independent model)"),
    P_ENUM(T, "branch", branch, "default", "default|public|private", branch_values,
           "passport suspects: branch queried (default: public for v2/v3)"),
    /* not the task's business (it only matches): the results' /ipguard reads it from the task */
    {"calibration", IP_P_BOOL, IP_F_NONE, 0, 0, "false", 0, 0, 1, NULL, NULL,
     "an independent suspect used only to choose the fingerprint's threshold (docs/fingerprint.md): its false "
     "positives are not reported, and it is left out of ARUC and ROC AUC"},
};
static int match_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_match(t, out, e); }
const ip_task_def ip_match_def = {
    .name = "match",
    .doc = "IPGuard: matching rate of a suspect model on a fingerprint (and the suspect's test accuracy)",
    IP_ROWS(match_params),
    .size = sizeof(T),
    .at_data = IP_AT(T, data),
    .at_test_limit = IP_AT(T, test_limit),
    .run = match_run,
};
#undef T

/* ---------------- task code ---------------- */

void ip_fingerprint_task_defaults(ip_fingerprint_task *t) { ip_task_defaults(&ip_fingerprint_def, t); }

/* Test accuracy of m on the branch a fingerprint is made or matched with. */
static int branch_acc(ip_model *m, const ip_dataset *test, int branch, int remember, double *acc, ip_err *e) {
    ip_branch keep = m->branch;
    m->branch = ip_fp_resolve_branch(m, branch);
    /* remember: a suspect is matched against every fingerprint and its accuracy is one, so it is
     * evaluated in passes of ip_infer_batch(m, 256) whatever the fingerprint's size and remembered (core/io/cache.h);
     * not where the model is used afterwards, as a remembered accuracy runs no forward pass */
    int rc = remember ? ip_cache_evaluate(m, test, 256, acc, e)
                      : ip_evaluate(m, test, m->batch > 0 ? m->batch : 256, acc, e);
    m->branch = keep;
    return rc;
}

/* The models of a set (paths joined by IP_PATH_SET_SEP) into ms[0 .. *n-1]. */
static int open_set(const char *list, const char *what, ip_model *ms, int *n, ip_err *e) {
    const char *at[IP_MAX_MODEL_SET];
    size_t len[IP_MAX_MODEL_SET];
    char msg[300], path[1024];
    int k = ip_path_set_split(list, at, len, IP_MAX_MODEL_SET, msg, sizeof msg);
    if (k < 0) return ip_fail_input(e, "%s: %s", what, msg);
    for (*n = 0; *n < k; (*n)++) {
        if (len[*n] >= sizeof path) return ip_fail_input(e, "%s: a path is longer than %zu characters", what, sizeof path - 1);
        memcpy(path, at[*n], len[*n]);
        path[len[*n]] = 0;
        if (ip_cache_open_model(&ms[*n], path, e) != 0) return ip_failctx(e, "%s", what);
    }
    return 0;
}

/* Method cae: the surrogates and references, the generation, and the conferrability of the points kept. */
static int fingerprint_cae(ip_model *m, const ip_fingerprint_task *t, const ip_dataset *train, const float *lo,
                           const float *hi, ip_fingerprint *fp, ip_fp_run *run, ip_saver *sv, ip_metrics *out,
                           ip_err *e) {
    ip_model sur[IP_MAX_MODEL_SET] = {0}, ref[IP_MAX_MODEL_SET] = {0};
    ip_model *ps[IP_MAX_MODEL_SET], *pr[IP_MAX_MODEL_SET];
    int ns = 0, nr = 0, rc = -1;
    if (open_set(t->surrogates, "surrogates", sur, &ns, e) != 0 || open_set(t->references, "references", ref, &nr, e) != 0)
        goto done;
    for (int i = 0; i < ns; i++) ps[i] = &sur[i];
    for (int i = 0; i < nr; i++) pr[i] = &ref[i];
    if (ip_cae_generate_resumable(m, ps, ns, pr, nr, train, lo, hi, &t->fp, fp, run, sv, e) != 0) goto done;
    size_t why[3] = {0};
    for (size_t p = 0; p < run->requested; p++)
        if (run->converged[p] < 0 && run->converged[p] >= -3) why[-run->converged[p] - 1]++;
    double soft = 0, hard = 0;
    if (ip_cae_fingerprint_scores(ps, ns, pr, nr, fp, &soft, &hard, e) != 0) goto done;
    const char *names[] = {"surrogates", "references", "seeds_wrong", "not_adversarial", "low_score", "score_mean",
                           "hard_score_mean"};
    double vals[] = {ns, nr, (double)why[0], (double)why[1], (double)why[2], soft, hard};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        if (ip_metrics_set(out, names[i], vals[i], e) != 0) goto done;
    rc = 0;
done:
    for (int i = 0; i < IP_MAX_MODEL_SET; i++) ip_model_free(&sur[i]), ip_model_free(&ref[i]);
    return rc;
}

int ip_task_fingerprint(const ip_fingerprint_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset test = {0}, train = {0};
    ip_model m = {0};
    ip_fingerprint fp = {0};
    ip_fp_run run = {0};
    ip_saver sv = {0};
    double *iters = NULL, *conv = NULL;
    int rc = -1;
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_fingerprint_def, t), e) < 0) goto done;
    if (ip_task_open(&m, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    double owner_acc;
    if (ip_model_plan(&m, 256, e) != 0 || branch_acc(&m, &test, t->fp.branch, 0, &owner_acc, e) != 0) goto done;
    if ((t->fp.init == IP_FP_INIT_TRAIN || t->fp.method == IP_FP_METHOD_CAE) &&
        (ip_cache_data_load(&train, t->data, IP_SPLIT_TRAIN, t->train_limit, e) != 0 ||
         ip_data_match_model(&train, &m, e) != 0))
        goto done;
    /* the valid input range: pixels [0, 1] under the model's normalisation */
    float lo[4], hi[4];
    ip_data_input_range(&test, lo, hi);
    if (t->fp.method == IP_FP_METHOD_CAE
            ? fingerprint_cae(&m, t, &train, lo, hi, &fp, &run, &sv, out, e) != 0
            : ip_fingerprint_generate_resumable(&m, &train, lo, hi, &t->fp, &fp, &run, &sv, e) != 0)
        goto done;
    if (t->out[0] && ip_fingerprint_save(&fp, t->out, e) != 0) goto done;
    size_t K = run.requested;
    iters = malloc(K * sizeof *iters);
    conv = malloc(K * sizeof *conv);
    if (!iters || !conv) {
        ip_fail(e, "out of memory");
        goto done;
    }
    double isum = 0, imax = 0;
    for (size_t p = 0; p < K; p++) {
        iters[p] = run.iterations[p], conv[p] = run.converged[p] == 1;
        isum += iters[p];
        if (iters[p] > imax) imax = iters[p];
    }
    double secs = run.seconds > 0 ? run.seconds : 1e-9;
    const char *names[] = {"points_requested", "points", "unconverged", "iters_mean", "iters_max",
                           "points_per_s", "seconds", "owner_acc"};
    double vals[] = {(double)K, (double)fp.n, (double)fp.unconverged, isum / (double)K, imax,
                     (double)K / secs, run.seconds, owner_acc};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        if (ip_metrics_set(out, names[i], vals[i], e) != 0) goto done;
    if (ip_metrics_set_array(out, "iterations", iters, K, e) != 0 ||
        ip_metrics_set_array(out, "converged", conv, K, e) != 0)
        goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(iters), free(conv);
    ip_fp_run_free(&run);
    ip_fingerprint_free(&fp);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}

int ip_task_match(const ip_match_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset test = {0};
    ip_model m = {0};
    ip_fingerprint fp = {0};
    int rc = -1;
    double rate, acc;
    if (ip_fingerprint_load(&fp, t->fingerprint_path, e) != 0) goto done;
    if (ip_task_open(&m, &test, t->suspect_path, t->data, t->test_limit, e) != 0) goto done;
    /* the accuracy first: a remembered one needs no plan, a computed one plans the model once for both */
    if (branch_acc(&m, &test, t->branch, 1, &acc, e) != 0) goto done;
    if (m.batch == 0 && ip_model_plan(&m, fp.n < 256 ? (fp.n ? (int)fp.n : 1) : 256, e) != 0) goto done;
    if (ip_fingerprint_match(&m, &fp, t->branch, &rate, e) != 0) {
        ip_failctx(e, "matching %s against %s", t->suspect_path, t->fingerprint_path);
        goto done;
    }
    if (ip_metrics_set(out, "match_rate", rate, e) || ip_metrics_set(out, "points", (double)fp.n, e) ||
        ip_metrics_set(out, "suspect_acc", acc, e))
        goto done;
    rc = 0;
done:
    ip_fingerprint_free(&fp);
    ip_model_free(&m);
    ip_data_free(&test);
    return rc;
}
