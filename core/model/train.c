/* The training and evaluation loops shared by `ipsweep train`, `eval` and the
 * runner's task kinds. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../nn/layers.h"
#include "../passport/trigger.h"
#include "../util/proc.h"
#include "../util/progress.h"
#include "../util/rng.h"
#include "evalrec.h"

void ip_train_defaults(ip_train_cfg *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 1;
    c->batch = 64;
    ip_optim_defaults(&c->opt, IP_OPT_SGD);
    c->seed = 1;
}

int ip_data_match_model(ip_dataset *d, const ip_model *m, ip_err *e) {
    const ip_model_cfg *c = &m->cfg;
    const char *from = d->origin[0] ? d->origin : "the data";
    if (d->c != c->in_c || d->h != c->in_h || d->w != c->in_w)
        return ip_fail_input(e, "%s: samples are %dx%dx%d but the model (%s) expects %dx%dx%d", from, d->c, d->h,
                             d->w, c->arch, c->in_c, c->in_h, c->in_w);
    if (d->classes != c->classes)
        return ip_fail_input(e, "%s: %d classes but the model has %d", from, d->classes, c->classes);
    if (d->normalised) {
        for (int ch = 0; ch < d->c; ch++)
            if (d->mean[ch] != c->in_mean[ch] || d->std[ch] != c->in_std[ch])
                return ip_fail(e, "data was normalised with other statistics than the model's");
        return 0;
    }
    ip_data_normalise(d, c->in_mean, c->in_std);
    return 0;
}

/* Branches trained each minibatch: v2/v3 train the public and the private
 * branch on every batch (REFERENCE.md), the others just the one they have. */
static int branches_of(const ip_model *m, ip_branch *out) {
    if (m->cfg.scheme == IP_SCHEME_V2 || m->cfg.scheme == IP_SCHEME_V3) {
        out[0] = IP_BRANCH_PUBLIC;
        out[1] = IP_BRANCH_PRIVATE;
        return 2;
    }
    out[0] = IP_BRANCH_PRIVATE;
    return 1;
}

/* v3: appends IP_TRIGGER_PER_BATCH trigger samples after the n data samples
 * of a batch, cycling through the set in order across steps and epochs
 * (`next` counts the trigger samples used so far). */
static int add_triggers(const ip_dataset *trig, size_t *next, float *xb, int32_t *yb, int n) {
    size_t sample = (size_t)trig->c * trig->h * trig->w;
    for (int j = 0; j < IP_TRIGGER_PER_BATCH; j++, (*next)++) {
        size_t k = *next % trig->n;
        memcpy(xb + (size_t)(n + j) * sample, trig->x + k * sample, sample * sizeof *xb);
        yb[n + j] = trig->y[k];
    }
    return n + IP_TRIGGER_PER_BATCH;
}

/* Where a training run is: saved as part "train.pos" of the task state
 * (io/resume.h) at the start of a step; a resumed run continues with that
 * step. The epoch's sample order is keyed by (seed, epoch); the augmentation
 * stream's counter is part of the position, so a resumed run draws exactly
 * the numbers an uninterrupted one would. */
typedef struct train_pos {
    int32_t epoch, pad;
    uint64_t start;          /* index (in the epoch's order) of the step's first sample */
    uint64_t trig_next;      /* v3: trigger samples used so far */
    double loss_sum, sign_sum;
    uint64_t correct_sum, seen, steps;
    ip_rng aug;
} train_pos;

typedef struct train_save {
    const ip_model *m;
    const ip_optim *opt;
    const train_pos *pos;
    ip_saver *sv;
    const ip_metrics *metrics;
} train_save;

static int train_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    train_save *t = user;
    if (ip_state_add_model(parts, n, "model.", t->m) != 0 || ip_state_add_optim(parts, n, "optim.", t->opt) != 0 ||
        ip_state_add(parts, n, "train.pos", t->pos, sizeof *t->pos) != 0)
        return ip_fail(e, "too many state parts");
    return t->metrics ? ip_state_add_metrics(t->sv, parts, n, t->metrics, e) : 0;
}

/* Restores a saved run: weights, optimiser, position and metrics. */
static int train_restore(ip_saver *sv, ip_model *m, ip_optim *opt, train_pos *pos, ip_metrics *metrics, ip_err *e) {
    if (ip_state_get_model(sv, "model.", m, e) != 0 || ip_state_get_optim(sv, "optim.", opt, e) != 0 ||
        ip_state_get(&sv->loaded, sv->r.path, "train.pos", pos, sizeof *pos, e) != 0)
        return -1;
    if (metrics && ip_state_get_metrics(sv, metrics, e) != 0) return -1;
    return 0;
}

int ip_train(ip_model *m, const ip_dataset *train, const ip_dataset *test, const ip_train_cfg *c, ip_epoch_cb cb,
             void *user, ip_err *e) {
    return ip_train_resumable(m, train, test, c, cb, user, NULL, NULL, e);
}

int ip_train_resumable(ip_model *m, const ip_dataset *train, const ip_dataset *test, const ip_train_cfg *c,
                       ip_epoch_cb cb, void *user, ip_saver *sv, ip_metrics *metrics, ip_err *e) {
    if (c->batch < 1 || c->epochs < 0) return ip_fail(e, "bad batch %d / epochs %d", c->batch, c->epochs);
    if (train->n == 0) return ip_fail(e, "empty training set");
    /* v3 mixes trigger samples into every minibatch (docs/passports.md "Trigger set") */
    ip_dataset trig = {0};
    int ntrig = m->cfg.scheme == IP_SCHEME_V3 && m->trigger.n > 0 ? IP_TRIGGER_PER_BATCH : 0;
    if (ntrig && ip_trigger_normalised(m, &trig, e) != 0) return -1;
    int cap = c->batch + ntrig;
    if ((m->batch < cap && ip_model_plan(m, cap, e) != 0) || ip_model_plan_backward(m, e) != 0) {
        ip_data_free(&trig);
        return -1;
    }
    ip_optim opt;
    if (ip_optim_init(&opt, &c->opt, m->nparams, e) != 0) {
        ip_data_free(&trig);
        return -1;
    }
    size_t sample = (size_t)train->c * train->h * train->w;
    uint32_t *order = malloc(train->n * sizeof *order);
    float *xb = malloc((size_t)cap * sample * sizeof *xb);
    int32_t *yb = malloc((size_t)cap * sizeof *yb);
    int rc = 0;
    if (!order || !xb || !yb) {
        rc = ip_fail(e, "out of memory for the training batch");
        goto done;
    }
    train_pos pos = {0};
    int resumed = sv && sv->resumed;
    if (resumed && train_restore(sv, m, &opt, &pos, metrics, e) != 0) {
        rc = -1;
        goto done;
    }
    train_save saving = {m, &opt, &pos, sv, metrics};
    ip_branch br[2];
    int nbr = branches_of(m, br);
    ip_branch saved_branch = m->branch;
    for (int epoch = pos.epoch; epoch < c->epochs; epoch++) {
        double t0 = ip_now_s();
        float lr = ip_optim_lr_at(&c->opt, epoch);
        ip_data_epoch_order(order, train->n, c->seed, (uint64_t)epoch);
        if (!resumed) { /* a new epoch (a resumed one has its position) */
            pos = (train_pos){.epoch = epoch, .trig_next = pos.trig_next};
            ip_rng_init(&pos.aug, c->seed, ip_stream("augment", (uint64_t)epoch));
        }
        resumed = 0;
        for (; pos.start < train->n; pos.start += (size_t)c->batch) {
            if (sv) {
                char where[64];
                snprintf(where, sizeof where, "epoch %d, sample %zu", epoch + 1, (size_t)pos.start);
                if (ip_saver_point(sv, train_fill, &saving, where, e) != 0) {
                    rc = -1;
                    goto done;
                }
            }
            ip_progress_note((double)epoch * train->n + (double)pos.start, (double)c->epochs * train->n);
            size_t start = (size_t)pos.start;
            int n = (int)((train->n - start) < (size_t)c->batch ? train->n - start : (size_t)c->batch);
            ip_data_gather(train, order + start, (size_t)n, xb, yb, c->augment, &pos.aug);
            /* both branches see the same triggers; the loss averages over data and triggers */
            size_t trig_next = (size_t)pos.trig_next;
            int nb = ntrig ? add_triggers(&trig, &trig_next, xb, yb, n) : n;
            pos.trig_next = trig_next;
            ip_model_zero_grad(m);
            double step_loss = 0;
            for (int b = 0; b < nbr; b++) {
                m->branch = br[b];
                int private = br[b] == IP_BRANCH_PRIVATE && m->npassports > 0;
                m->sign_loss_scale = private ? 1.f : 0.f;
                const float *logits = ip_model_forward(m, xb, nb, 1);
                int correct = 0;
                step_loss += xent_forward_backward(m->dlogits, logits, yb, nb, m->cfg.classes, 1.f, &correct);
                /* the epoch accuracy counts the data samples only */
                if (ntrig) xent_forward_backward(NULL, logits, yb, n, m->cfg.classes, 1.f, &correct);
                if (private) {
                    double sl = ip_model_sign_loss(m);
                    pos.sign_sum += sl;
                    step_loss += sl;
                }
                if (b == nbr - 1) pos.correct_sum += (size_t)correct;
                ip_model_backward(m, m->dlogits, NULL);
            }
            if (!isfinite(step_loss)) {
                rc = ip_fail(e, "non-finite loss at epoch %d step %zu (lr %g): training diverged", epoch + 1,
                             (size_t)pos.steps, (double)lr);
                m->branch = saved_branch;
                goto done;
            }
            ip_optim_step(&opt, m, lr);
            pos.loss_sum += step_loss * n;
            pos.seen += (size_t)n;
            pos.steps++;
        }
        m->branch = saved_branch;
        m->sign_loss_scale = 0;
        ip_epoch_report r = {.epoch = epoch + 1,
                             .train_loss = pos.loss_sum / (double)pos.seen,
                             .train_acc = (double)pos.correct_sum / (double)pos.seen,
                             .sign_loss = pos.sign_sum / (double)pos.steps,
                             .test_acc = -1,
                             .detect = m->npassports ? ip_model_detect(m, -1) : -1};
        if (test && ip_evaluate(m, test, c->batch, &r.test_acc, e) != 0) {
            rc = -1;
            goto done;
        }
        r.seconds = ip_now_s() - t0;
        if (c->verbose) {
            fprintf(stderr, "epoch %d/%d: loss %.4f train_acc %.4f", r.epoch, c->epochs, r.train_loss, r.train_acc);
            if (r.test_acc >= 0) fprintf(stderr, " test_acc %.4f", r.test_acc);
            if (m->npassports) fprintf(stderr, " sign_loss %.4f detect %.4f", r.sign_loss, r.detect);
            fprintf(stderr, " lr %g (%.1f s, %.0f img/s)\n", (double)lr, r.seconds,
                    (double)pos.seen * nbr / r.seconds);
        }
        if (cb && cb(&r, user) != 0) break;
    }
done:
    m->sign_loss_scale = 0;
    ip_data_free(&trig);
    ip_optim_free(&opt);
    free(order);
    free(xb);
    free(yb);
    return rc;
}

int ip_infer_batch(const ip_model *m, int batch) {
    if (batch < 1) return 1;
    int small = ip_model_flops_per_sample(m) <= IP_INFER_SMALL_MFLOP * 1e6;
    return small && batch > IP_INFER_BATCH ? IP_INFER_BATCH : batch;
}

int ip_predict(ip_model *m, const ip_dataset *d, int batch, int32_t *pred, ip_err *e) {
    batch = ip_infer_batch(m, batch);
    if (m->batch == 0 && ip_model_plan(m, batch, e) != 0) return -1;
    if (batch > m->batch) batch = m->batch;
    size_t sample = (size_t)d->c * d->h * d->w;
    for (size_t start = 0; start < d->n; start += (size_t)batch) {
        int n = (int)((d->n - start) < (size_t)batch ? d->n - start : (size_t)batch);
        const float *logits = ip_model_infer(m, d->x + start * sample, n);
        argmax_rows(pred + start, logits, n, m->cfg.classes);
    }
    return 0;
}

double ip_accuracy(const int32_t *pred, const ip_dataset *d) {
    size_t ok = 0;
    for (size_t i = 0; i < d->n; i++) ok += pred[i] == d->y[i];
    return (double)ok / (double)d->n;
}

/* The images per pass ip_predict will run for `batch`. */
static int predict_pass(const ip_model *m, int batch) {
    int pass = ip_infer_batch(m, batch);
    return m->batch > 0 && pass > m->batch ? m->batch : pass;
}

int ip_evaluate(ip_model *m, const ip_dataset *d, int batch, double *acc, ip_err *e) {
    if (d->n == 0) return ip_fail(e, "empty evaluation set");
    ip_eval_record key;
    const int records = ip_eval_records_used();
    if (records) {
        ip_eval_record_key(&key, m, d, predict_pass(m, batch));
        if (ip_eval_record_find(m, &key, acc)) return 0;
    }
    int32_t *pred = malloc(d->n * sizeof *pred);
    if (!pred) return ip_fail(e, "out of memory");
    if (ip_predict(m, d, batch, pred, e) != 0) {
        free(pred);
        return -1;
    }
    *acc = ip_accuracy(pred, d);
    free(pred);
    if (records) ip_eval_record_add(m, &key, *acc);
    return 0;
}
