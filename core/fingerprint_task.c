/* Task code of the runner kinds `fingerprint` and `match` (fingerprint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/param.h"
#include "ckpt.h"
#include "fingerprint.h"
#include "tasks.h"
#include "train.h"

void ip_fingerprint_task_defaults(ip_fingerprint_task *t) { ip_task_defaults(&ip_fingerprint_def, t); }

/* Test accuracy of m on the branch a fingerprint is made or matched with. */
static int branch_acc(ip_model *m, const ip_dataset *test, int branch, double *acc, ip_err *e) {
    ip_branch keep = m->branch;
    m->branch = ip_fp_resolve_branch(m, branch);
    int rc = ip_evaluate(m, test, m->batch > 0 ? m->batch : 256, acc, e);
    m->branch = keep;
    return rc;
}

int ip_task_fingerprint(const ip_fingerprint_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset test = {0}, train = {0};
    ip_model m = {0};
    ip_fingerprint fp = {0};
    ip_fp_run run = {0};
    double *iters = NULL, *conv = NULL;
    int rc = -1;
    if (ip_task_open(&m, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    double owner_acc;
    if (ip_model_plan(&m, 256, e) != 0 || branch_acc(&m, &test, t->fp.branch, &owner_acc, e) != 0) goto done;
    if (t->fp.init == IP_FP_INIT_TRAIN &&
        (ip_data_load(&train, t->data, IP_SPLIT_TRAIN, t->train_limit, e) != 0 ||
         ip_data_match_model(&train, &m, e) != 0))
        goto done;
    /* the valid input range: pixels [0, 1] under the model's normalisation */
    float lo[4], hi[4];
    ip_data_input_range(&test, lo, hi);
    if (ip_fingerprint_generate(&m, &train, lo, hi, &t->fp, &fp, &run, e) != 0) goto done;
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
        iters[p] = run.iterations[p], conv[p] = run.converged[p];
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
    if (ip_model_plan(&m, fp.n < 256 ? (fp.n ? (int)fp.n : 1) : 256, e) != 0) goto done;
    if (ip_fingerprint_match(&m, &fp, t->branch, &rate, e) != 0) {
        ip_failctx(e, "matching %s against %s", t->suspect_path, t->fingerprint_path);
        goto done;
    }
    if (branch_acc(&m, &test, t->branch, &acc, e) != 0) goto done;
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
