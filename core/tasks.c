#include "tasks/param.h"
#include "tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "data.h"
#include "prune.h"
#include "trigger.h"

/* The defaults are the rows of the kinds' parameter tables (core/tasks/). */
void ip_train_task_defaults(ip_train_task *t) {
    ip_task_defaults(&ip_train_def, t);
    t->seed = t->train.seed = 1; /* the seed key only names the task; a task alone uses 1 */
}

void ip_eval_task_defaults(ip_eval_task *t) { ip_task_defaults(&ip_eval_def, t); }

typedef struct epoch_sink {
    ip_metrics *out;
    ip_err *e;
    int failed;
} epoch_sink;

static int record_epoch(const ip_epoch_report *r, void *user) {
    epoch_sink *s = user;
    if (ip_metrics_append(s->out, "epoch_test_acc", r->test_acc, s->e) != 0 ||
        ip_metrics_append(s->out, "epoch_train_loss", r->train_loss, s->e) != 0)
        return s->failed = 1;
    if (r->detect >= 0 && ip_metrics_append(s->out, "epoch_detect", r->detect, s->e) != 0) return s->failed = 1;
    return 0;
}

/* Accuracy of every branch a passport model has, its signature detection
 * (overall and per passport layer) and, for v3, its trigger-set accuracy. */
static int passport_metrics(ip_model *m, const ip_dataset *test, int batch, ip_metrics *out, ip_err *e) {
    if (m->npassports == 0) return 0;
    if (ip_metrics_set(out, "detect", ip_model_detect(m, -1), e) != 0) return -1;
    for (int p = 0; p < m->npassports; p++) {
        char name[IP_METRIC_NAME_LEN];
        snprintf(name, sizeof name, "detect_%s", m->passports[p].layer);
        if (ip_metrics_set(out, name, ip_model_detect(m, p), e) != 0) return -1;
    }
    if (ip_trigger_metrics(m, batch, "", out, e) != 0) return -1;
    if (m->cfg.scheme == IP_SCHEME_V2 || m->cfg.scheme == IP_SCHEME_V3) {
        double acc;
        ip_branch keep = m->branch;
        m->branch = IP_BRANCH_PUBLIC;
        int rc = ip_evaluate(m, test, batch, &acc, e);
        m->branch = keep;
        if (rc != 0 || ip_metrics_set(out, "public_test_acc", acc, e) != 0) return -1;
    }
    return 0;
}


int ip_task_train(const ip_train_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset train = {0}, test = {0};
    ip_model m = {0};
    int rc = -1;
    if (ip_data_load(&train, t->data, IP_SPLIT_TRAIN, t->train_limit, e) != 0) goto done;
    if (ip_data_load(&test, t->data, IP_SPLIT_TEST, t->test_limit, e) != 0) goto done;
    if (ip_data_check_splits(&train, &test, t->data, e) != 0) goto done;
    ip_model_cfg cfg = t->model;
    cfg.in_c = train.c, cfg.in_h = train.h, cfg.in_w = train.w, cfg.classes = train.classes;
    /* the model remembers the training set's statistics: eval and attacks normalise with them */
    ip_data_channel_stats(&train, cfg.in_mean, cfg.in_std);
    if (ip_model_build(&m, &cfg, e) != 0) goto done;
    if (ip_model_init(&m, t->seed, t->signature, e) != 0) goto done;
    if (cfg.scheme == IP_SCHEME_V3 && ip_trigger_attach(&m, t->triggers, t->seed, e) != 0) goto done;
    if (ip_data_match_model(&train, &m, e) != 0 || ip_data_match_model(&test, &m, e) != 0) goto done;
    ip_train_cfg tc = t->train;
    if (tc.seed == 0) tc.seed = t->seed;
    epoch_sink sink = {out, e, 0};
    if (ip_train(&m, &train, &test, &tc, record_epoch, &sink, e) != 0 || sink.failed) goto done;
    double acc;
    if (ip_evaluate(&m, &test, tc.batch, &acc, e) != 0) goto done;
    if (ip_metrics_set(out, "test_acc", acc, e) != 0) goto done;
    const ip_metric_array *loss = NULL;
    for (int i = 0; i < out->narrays; i++)
        if (strcmp(out->arrays[i].name, "epoch_train_loss") == 0) loss = &out->arrays[i];
    if (loss && loss->n && ip_metrics_set(out, "train_loss", loss->v[loss->n - 1], e) != 0) goto done;
    if (ip_metrics_set(out, "params", (double)m.nparams, e) != 0) goto done;
    if (passport_metrics(&m, &test, tc.batch, out, e) != 0) goto done;
    if (t->out[0] && ip_ckpt_save(&m, t->out, e) != 0) goto done;
    rc = 0;
done:
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}

int ip_task_open(ip_model *m, ip_dataset *test, const char *model_path, const char *data, size_t test_limit,
                 ip_err *e) {
    if (ip_ckpt_open_model(m, model_path, e) != 0) return -1;
    if (ip_data_load(test, data, IP_SPLIT_TEST, test_limit, e) != 0) return -1;
    return ip_data_match_model(test, m, e);
}

int ip_task_eval(const ip_eval_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset test = {0};
    ip_model m = {0};
    int32_t *pred = NULL;
    int rc = -1;
    if (ip_task_open(&m, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    if (t->branch >= 0) m.branch = (ip_branch)t->branch;
    if (ip_model_plan(&m, t->batch, e) != 0) goto done;
    if (test.n == 0) { /* ip_data_load never returns an empty split; no 0/0 accuracy either way */
        ip_fail_input(e, "the test split of %s is empty", t->data);
        goto done;
    }
    pred = malloc(test.n * sizeof *pred);
    if (!pred) {
        ip_fail(e, "out of memory");
        goto done;
    }
    if (ip_predict(&m, &test, t->batch, pred, e) != 0) goto done;
    size_t ok = 0;
    for (size_t i = 0; i < test.n; i++) ok += pred[i] == test.y[i];
    if (ip_metrics_set(out, "test_acc", (double)ok / (double)test.n, e) != 0) goto done;
    if (ip_metrics_set(out, "n", (double)test.n, e) != 0) goto done;
    if (passport_metrics(&m, &test, t->batch, out, e) != 0) goto done;
    if (t->predictions[0]) {
        FILE *f = fopen(t->predictions, "w");
        if (!f) {
            ip_fail(e, "cannot write predictions to %s", t->predictions);
            goto done;
        }
        for (size_t i = 0; i < test.n; i++) fprintf(f, "%d\n", pred[i]);
        if (fclose(f) != 0) {
            ip_fail(e, "error writing %s", t->predictions);
            goto done;
        }
    }
    rc = 0;
done:
    free(pred);
    ip_model_free(&m);
    ip_data_free(&test);
    return rc;
}

int ip_task_prune(const ip_prune_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset test = {0};
    ip_model m = {0};
    int rc = -1;
    size_t pruned = 0;
    double acc;
    if (ip_task_open(&m, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    if (ip_prune_global(&m, t->rate, &pruned, e) != 0) goto done;
    if (ip_model_plan(&m, 256, e) != 0 || ip_evaluate(&m, &test, 256, &acc, e) != 0) goto done;
    if (ip_metrics_set(out, "rate", t->rate, e) || ip_metrics_set(out, "pruned", (double)pruned, e) ||
        ip_metrics_set(out, "test_acc", acc, e))
        goto done;
    if (passport_metrics(&m, &test, 256, out, e) != 0) goto done;
    if (t->out[0] && ip_ckpt_save(&m, t->out, e) != 0) goto done;
    rc = 0;
done:
    ip_model_free(&m);
    ip_data_free(&test);
    return rc;
}
