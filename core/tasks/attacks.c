/* The attack kinds finetune, flip, fake2 and fake3 (docs/attacks.md): their
 * parameter tables, then their task code on the building blocks of
 * core/passport/attacks.h. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../model/train.h"
#include "../passport/attacks.h"
#include "../passport/signature.h"
#include "../passport/trigger.h"
#include "../util/rng.h"
#include "../util/progress.h"
#include "param.h"
#include "tasks.h"
#include "att_loop.h"

#define LR_KEY(S) P_FLOAT(S, "lr", IP_F_FLOAT, opt.lr, 0.01, 1e-9, 10, "SGD learning rate (momentum 0.9, weight decay 5e-4)")
#define BATCH_KEY(S) P_INT(S, "batch", IP_F_INT, batch, 64, 1, 65536, "minibatch size (also the evaluation batch)")
#define EPOCHS_KEY(S, doc) P_INT(S, "epochs", IP_F_INT, epochs, 2, 0, 100000, doc)

/* ---------------- finetune ---------------- */

#define T ip_finetune_task
static const ip_param finetune_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to fine-tune"),
    P_ENUM(T, "mode", mode, "rtal", "ftll|ftal|rtll|rtal", NULL,
           "fine-tune last layer / all layers; re-initialise the last layer and train it / train all"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1,
            "attacker's training samples as a fraction of the owner's training set size (data.train_limit)"),
    P_BOOL(T, "disjoint", disjoint, false,
           "use the training samples after the owner's data.train_limit (data the owner never saw)"),
    EPOCHS_KEY(T, "fine-tuning epochs"),
    LR_KEY(T),
    BATCH_KEY(T),
    SEED_KEY,
    P_PROTOCOL(T, protocol),
};
_Static_assert(IP_FT_FTLL == 0 && IP_FT_FTAL == 1 && IP_FT_RTLL == 2 && IP_FT_RTAL == 3, "choices in enum order");
IP_OPTIM_INIT(finetune_init, T)
static int finetune_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_finetune(t, out, e); }
const ip_task_def ip_finetune_def = {
    .name = "finetune",
    .doc = "fine-tuning attack / IPGuard suspect (FTLL, FTAL, RTLL, RTAL); docs/attacks.md",
    IP_ROWS(finetune_params),
    .size = sizeof(T),
    .init = finetune_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .run = finetune_run,
};
#undef T

/* ---------------- flip ---------------- */

#define T ip_flip_task
static const ip_param flip_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model whose gamma signs are flipped"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 0.5, 0, 1,
            "fraction of the channels of every passport layer flipped (deepipr-code: of all of them together)"),
    P_INT(T, "batch", IP_F_INT, batch, 256, 1, 65536, P_EVAL_BATCH_DOC),
    SEED_KEY,
    P_PROTOCOL(T, protocol),
};
static int flip_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_flip(t, out, e); }
const ip_task_def ip_flip_def = {
    .name = "flip",
    .doc = "flip the signs of a fraction of the passport gammas, then evaluate",
    IP_ROWS(flip_params),
    .size = sizeof(T),
    .at_data = IP_AT(T, data),
    .at_test_limit = IP_AT(T, test_limit),
    .at_seed = {IP_AT(T, seed)},
    .run = flip_run,
};
#undef T

/* ---------------- fake2 ---------------- */

#define T ip_fake2_task
static const ip_param fake2_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the passport model to forge a passport for"),
    P_ENUM(T, "target", target, "affine", "affine|passport", NULL,
           "learn gamma/beta of the passport layers directly, or the passport tensors"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1, "fraction of the owner's training data the attacker has"),
    P_FLOAT(T, "init_flip", IP_F_DOUBLE, init_flip, 0.5, 0, 1,
            "affine: fraction of the true gamma signs flipped in the initial gamma (= sign x 0.5; deepipr-code: "
            "sign x U(0, 1), flipped across layers)"),
    EPOCHS_KEY(T, "training epochs"),
    LR_KEY(T),
    BATCH_KEY(T),
    SEED_KEY,
    P_PROTOCOL(T, protocol),
};
_Static_assert(IP_FAKE2_AFFINE == 0 && IP_FAKE2_PASSPORT == 1, "choices in enum order");
IP_OPTIM_INIT(fake2_init, T)
static int fake2_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fake2(t, out, e); }
const ip_task_def ip_fake2_def = {
    .name = "fake2",
    .doc = "ambiguity attack: forge gamma/beta or passports with the weights frozen",
    IP_ROWS(fake2_params),
    .size = sizeof(T),
    .init = fake2_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .run = fake2_run,
};
#undef T

/* ---------------- fake3 ---------------- */

#define T ip_fake3_task
static const ip_param fake3_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL,
          "the passport model (the insider has its weights, data, passports and signature)"),
    P_FLOAT(T, "flip_fraction", IP_F_DOUBLE, flip_fraction, 0, 0, 1,
            "fraction of the owner's signature bits (per layer) flipped to form the target signature"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1, "fraction of the owner's training data used"),
    P_FLOAT(T, "push_weight", IP_F_DOUBLE, push_weight, 1, 0, 1e9,
            "weight of the push-away term sum 1/MSE(fake, real passport)"),
    EPOCHS_KEY(T, "training epochs"),
    LR_KEY(T),
    BATCH_KEY(T),
    SEED_KEY,
};
static void fake3_init(void *p) {
    T *t = p;
    ip_optim_defaults(&t->opt, IP_OPT_SGD);
    t->noise_std = 0.001; /* not keys (docs/attacks.md) */
    t->clip_norm = 2;
}
static int fake3_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fake3(t, out, e); }
const ip_task_def ip_fake3_def = {
    .name = "fake3",
    .doc = "insider ambiguity attack: push the real passports towards another signature",
    IP_ROWS(fake3_params),
    .size = sizeof(T),
    .init = fake3_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .run = fake3_run,
};
#undef T

/* ------------------------------------------------------------------------- */
/* Shared task plumbing                                                      */

int ip_att_setup(ip_model *m, ip_dataset *train, ip_dataset *test, const char *model_path, const char *data,
                 size_t train_limit, size_t test_limit, double train_fraction, int disjoint,
                 int batch, ip_err *e) {
    if (batch < 1) return ip_fail(e, "batch must be positive, got %d", batch);
    if (ip_task_open(m, test, model_path, data, test_limit, e) != 0) return -1;
    if (train_fraction > 0) {
        if (ip_attack_train_data(train, data, train_limit, train_fraction, disjoint, e) != 0) return -1;
        if (ip_data_match_model(train, m, e) != 0) return -1;
    }
    m->sign_loss_scale = 0;
    return ip_model_plan(m, batch, e);
}

static int eval_branch(ip_model *m, const ip_dataset *test, ip_branch br, int batch, double *acc, ip_err *e) {
    ip_branch keep = m->branch;
    m->branch = br;
    int rc = ip_evaluate(m, test, batch, acc, e);
    m->branch = keep;
    return rc;
}

void ip_att_set_all_trainable(ip_model *m, int v) {
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].kind == IP_TENSOR_PARAM) m->tensors[i].trainable = v;
}

static const ip_op *last_linear(const ip_model *m) {
    for (int i = m->nops - 1; i >= 0; i--)
        if (m->ops[i].kind == IP_OP_LINEAR) return &m->ops[i];
    return NULL;
}

/* Passport keys as one flat vector: layer 0 gamma key, layer 0 beta key, layer 1 ... */
static size_t keys_numel(const ip_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->npassports; i++)
        n += m->tensors[m->passports[i].key_gamma].numel + m->tensors[m->passports[i].key_beta].numel;
    return n;
}

static void keys_gather(ip_model *m, float *v) {
    for (int i = 0; i < m->npassports; i++) {
        const int ids[2] = {m->passports[i].key_gamma, m->passports[i].key_beta};
        for (int j = 0; j < 2; j++) {
            size_t n = m->tensors[ids[j]].numel;
            memcpy(v, ip_tensor_buf(m, ids[j]), n * sizeof *v);
            v += n;
        }
    }
}

static void keys_scatter(ip_model *m, const float *v) {
    for (int i = 0; i < m->npassports; i++) {
        const int ids[2] = {m->passports[i].key_gamma, m->passports[i].key_beta};
        for (int j = 0; j < 2; j++) {
            size_t n = m->tensors[ids[j]].numel;
            memcpy(ip_tensor_buf(m, ids[j]), v, n * sizeof *v);
            v += n;
        }
    }
    ip_model_passports_changed(m);
}

static size_t max_k(const ip_model *m) {
    size_t k = 1;
    for (int i = 0; i < m->npassports; i++)
        if (m->passports[i].k > k) k = m->passports[i].k;
    return k;
}

/* Where an attack's loop is: part "att.pos" of the task state, saved at the
 * start of a step; a resumed loop continues with that step. The epoch's
 * sample order is keyed by (seed, epoch); the gather stream is saved as it
 * is, so a resumed loop draws what an uninterrupted one would. */
typedef struct att_pos {
    int32_t epoch, pad;
    uint64_t start;           /* index (in the epoch's order) of the step's first sample */
    uint64_t step;            /* steps of the epoch so far (messages) */
    ip_rng aug;
} att_pos;

typedef struct att_save {
    att_loop *l;
    const ip_optim *opt;
    const att_pos *pos;
    size_t nk;
} att_save;

/* The parts the loop's result depends on: the model (weights, buffers,
 * passports, bits), the learned keys, the optimiser, the position and the
 * metrics so far. What the task did before the loop (initial evaluations,
 * re-initialisations, the true keys of fake3) it does again identically on
 * a resume; the restore then overwrites what the loop changed. */
static int att_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    att_save *s = user;
    if (ip_state_add_model(parts, n, "model.", s->l->m) != 0 || ip_state_add_optim(parts, n, "optim.", s->opt) != 0 ||
        ip_state_add(parts, n, "att.pos", s->pos, sizeof *s->pos) != 0 ||
        (s->l->keys && ip_state_add(parts, n, "att.keys", s->l->keys, s->nk * sizeof(float)) != 0))
        return ip_fail(e, "too many state parts");
    return s->l->out ? ip_state_add_metrics(s->l->sv, parts, n, s->l->out, e) : 0;
}

static int att_restore(att_loop *l, ip_optim *opt, att_pos *pos, size_t nk, ip_err *e) {
    ip_saver *sv = l->sv;
    if (ip_state_get_model(sv, "model.", l->m, e) != 0 || ip_state_get_optim(sv, "optim.", opt, e) != 0 ||
        ip_state_get(&sv->loaded, sv->r.path, "att.pos", pos, sizeof *pos, e) != 0)
        return -1;
    if (l->keys) {
        if (ip_state_get(&sv->loaded, sv->r.path, "att.keys", l->keys, nk * sizeof(float), e) != 0) return -1;
        if (l->vec_apply) l->vec_apply(l);
        else keys_scatter(l->m, l->keys);
    }
    if (pos->epoch < 0 || pos->epoch >= l->epochs || pos->start >= l->train->n)
        return ip_fail_input(e, "task state %s: position (epoch %d, sample %llu) is outside the task: delete it to "
                                "start the task over",
                             sv->r.path, (int)pos->epoch, (unsigned long long)pos->start);
    return l->out ? ip_state_get_metrics(sv, l->out, e) : 0;
}

/* Adds w * sum_t 1/MSE(P_t, P0_t) over the key tensors to the loss and its
 * gradient to g; returns the term. */
static double push_away(const ip_model *m, const float *p, const float *p0, float *g, double w) {
    double total = 0;
    size_t off = 0;
    for (int i = 0; i < m->npassports; i++) {
        const int ids[2] = {m->passports[i].key_gamma, m->passports[i].key_beta};
        for (int j = 0; j < 2; j++) {
            size_t n = m->tensors[ids[j]].numel;
            double se = 0;
            for (size_t k = 0; k < n; k++) {
                double d = (double)p[off + k] - p0[off + k];
                se += d * d;
            }
            double mse = se / (double)n;
            if (mse < 1e-30) mse = 1e-30;
            total += w / mse;
            double c = -w / (mse * mse) * 2.0 / (double)n;
            for (size_t k = 0; k < n; k++) g[off + k] += (float)(c * ((double)p[off + k] - p0[off + k]));
            off += n;
        }
    }
    return total;
}

int ip_att_run_loop(att_loop *l, ip_err *e) {
    ip_model *m = l->m;
    const ip_dataset *d = l->train;
    if (l->epochs < 0) return ip_fail(e, "epochs must be >= 0, got %d", l->epochs);
    if (d->n == 0) return ip_fail(e, "the attacker has no training samples");
    if (ip_model_plan_backward(m, e) != 0) return -1; /* the gradients' memory: an error here, not NaN later */
    size_t nk = l->vec_apply ? l->nvec : l->keys ? keys_numel(m) : 0;
    ip_optim opt;
    if (ip_optim_init(&opt, &l->opt, l->keys ? nk : m->nparams, e) != 0) return -1;
    size_t sample = (size_t)d->c * d->h * d->w;
    uint32_t *order = malloc(d->n * sizeof *order);
    float *xb = malloc((size_t)l->batch * sample * sizeof *xb);
    int32_t *yb = malloc((size_t)l->batch * sizeof *yb);
    float *dkeys = l->keys ? malloc(nk * sizeof *dkeys) : NULL;
    float *scratch = l->keys && !l->vec_apply ? malloc(max_k(m) * sizeof *scratch) : NULL;
    int rc = 0;
    if (!order || !xb || !yb || (l->keys && (!dkeys || (!scratch && !l->vec_apply)))) {
        rc = ip_fail(e, "out of memory for the attack's training buffers");
        goto done;
    }
    att_pos pos = {0};
    int resumed = l->sv && l->sv->resumed;
    if (resumed && att_restore(l, &opt, &pos, nk, e) != 0) {
        rc = -1;
        goto done;
    }
    att_save saving = {l, &opt, &pos, nk};
    for (int epoch = pos.epoch; epoch < l->epochs; epoch++) {
        float lr = ip_optim_lr_at(&l->opt, epoch);
        ip_data_epoch_order(order, d->n, l->seed, (uint64_t)epoch);
        if (!resumed) { /* a new epoch (a resumed one has its position) */
            pos = (att_pos){.epoch = epoch};
            ip_rng_init(&pos.aug, l->seed, ip_stream("attack-augment", (uint64_t)epoch));
        }
        resumed = 0;
        for (; pos.start < d->n; pos.start += (size_t)l->batch, pos.step++) {
            if (l->sv) {
                char where[64];
                snprintf(where, sizeof where, "epoch %d, sample %llu", epoch + 1, (unsigned long long)pos.start);
                if (ip_saver_point(l->sv, att_fill, &saving, where, e) != 0) {
                    rc = -1;
                    goto done;
                }
            }
            ip_progress_note((double)epoch * d->n + (double)pos.start, (double)l->epochs * d->n);
            size_t start = (size_t)pos.start, step = (size_t)pos.step;
            int n = (int)((d->n - start) < (size_t)l->batch ? d->n - start : (size_t)l->batch);
            ip_data_gather(d, order + start, (size_t)n, xb, yb, 0, &pos.aug);
            ip_model_zero_grad(m);
            const float *logits = ip_model_forward(m, xb, n, l->training);
            double loss = xent_forward_backward(m->dlogits, logits, yb, n, m->cfg.classes, 1.f, NULL);
            if (m->sign_loss_scale > 0) loss += m->sign_loss_scale * ip_model_sign_loss(m);
            ip_model_backward(m, m->dlogits, NULL);
            if (l->vec_apply) {
                memset(dkeys, 0, nk * sizeof *dkeys);
                loss += l->vec_grad(l, dkeys);
                ip_optim_step_vec(&opt, l->keys, dkeys, nk, lr);
                l->vec_apply(l);
            } else if (l->keys) {
                memset(dkeys, 0, nk * sizeof *dkeys);
                size_t off = 0;
                for (int p = 0; p < m->npassports; p++) {
                    size_t ng = m->tensors[m->passports[p].key_gamma].numel;
                    size_t nb = m->tensors[m->passports[p].key_beta].numel;
                    ip_passport_key_grads(m, p, dkeys + off, dkeys + off + ng, scratch);
                    off += ng + nb;
                }
                if (l->keys0 && l->push_weight > 0) loss += push_away(m, l->keys, l->keys0, dkeys, l->push_weight);
                if (l->clip_norm > 0) {
                    double sq = 0;
                    for (size_t i = 0; i < nk; i++) sq += (double)dkeys[i] * dkeys[i];
                    double norm = sqrt(sq), coef = l->clip_norm / (norm + 1e-6);
                    if (coef < 1)
                        for (size_t i = 0; i < nk; i++) dkeys[i] = (float)(dkeys[i] * coef);
                }
                ip_optim_step_vec(&opt, l->keys, dkeys, nk, lr);
                keys_scatter(m, l->keys);
            } else {
                ip_optim_step(&opt, m, lr);
            }
            if (!isfinite(loss)) {
                rc = ip_fail(e, "non-finite loss at epoch %d step %zu (lr %g): the attack diverged", epoch + 1, step,
                             (double)lr);
                goto done;
            }
        }
        if (l->epoch_end && (rc = l->epoch_end(l, epoch, e)) != 0) goto done;
    }
done:
    ip_optim_free(&opt);
    free(order), free(xb), free(yb), free(dkeys), free(scratch);
    return rc;
}

int ip_att_record(ip_metrics *out, const char *array, double v, ip_err *e) {
    if (ip_metrics_append(out, array, v, e) != 0) return -1;
    const char *scalar = strncmp(array, "epoch_", 6) == 0 ? array + 6 : array;
    return ip_metrics_set(out, scalar, v, e);
}

/* ------------------------------------------------------------------------- */
/* Fine-tuning                                                               */

void ip_finetune_task_defaults(ip_finetune_task *t) { ip_task_defaults(&ip_finetune_def, t); }

typedef struct ft_state {
    const ip_dataset *test;
    ip_metrics *out;
    int batch;
    int scale_is_detect;      /* deepipr-code on a v1 model: `detect` reads the fine-tuned scale */
} ft_state;

/* Detection from the signs of the learned (public) gammas of the passport layers. */
static double scale_detect(ip_model *m) {
    double s = 0;
    for (int p = 0; p < m->npassports; p++) {
        const ip_passport *pp = &m->passports[p];
        s += ip_sign_detect(ip_tensor_param(m, m->ops[pp->affine_op].weight), pp->bits, pp->cout);
    }
    return m->npassports ? s / m->npassports : 0;
}

static int ft_epoch_end(att_loop *l, int epoch, ip_err *e) {
    (void)epoch;
    ft_state *s = l->user;
    ip_model *m = l->m;
    double acc;
    if (ip_evaluate(m, s->test, s->batch, &acc, e) != 0 || ip_att_record(s->out, "epoch_test_acc", acc, e) != 0)
        return -1;
    if (m->npassports == 0) return 0;
    /* v3: does the black-box watermark survive? (deployed = public branch, and the private one) */
    if (ip_trigger_metrics(m, s->batch, "epoch_", s->out, e) != 0) return -1;
    /* two readings of the signature (docs/attacks.md "finetune"): the passport gamma recomputed
     * from the fine-tuned weights, and the fine-tuned scale itself */
    double det_passport = ip_model_detect(m, -1), det_scale = scale_detect(m);
    if (ip_att_record(s->out, "epoch_detect", s->scale_is_detect ? det_scale : det_passport, e) != 0 ||
        ip_att_record(s->out, "epoch_detect_passport", det_passport, e) != 0 ||
        ip_att_record(s->out, "epoch_detect_scale", det_scale, e) != 0)
        return -1;
    if (eval_branch(m, s->test, IP_BRANCH_PRIVATE, s->batch, &acc, e) != 0) return -1;
    return ip_att_record(s->out, "epoch_private_acc", acc, e);
}

int ip_task_finetune(const ip_finetune_task *t, ip_metrics *out, ip_err *e) {
    ip_model m = {0};
    ip_dataset train = {0}, test = {0};
    ip_saver sv = {0};
    int rc = -1;
    if ((unsigned)t->mode > IP_FT_RTAL) return ip_fail(e, "bad fine-tuning mode %d", (int)t->mode);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_finetune_def, t), e) < 0) goto done;
    if (ip_att_setup(&m, &train, &test, t->model_path, t->data, t->train_limit, t->test_limit, t->fraction,
              t->disjoint, t->batch, e) != 0)
        goto done;
    /* the deployed network: v1 -> its passport gamma/beta as an ordinary affine; v2/v3 -> the public branch */
    int was_v1 = m.cfg.scheme == IP_SCHEME_V1 && m.npassports;
    if (m.cfg.scheme == IP_SCHEME_V1) ip_attack_passport_to_affine(&m);
    else if (m.npassports) m.branch = IP_BRANCH_PUBLIC;
    double acc;
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "owner_test_acc", acc, e) != 0)
        goto done;
    const ip_op *fc = last_linear(&m);
    if (!fc) {
        ip_fail(e, "the model has no linear classifier");
        goto done;
    }
    int all = t->mode == IP_FT_FTAL || t->mode == IP_FT_RTAL;
    ip_att_set_all_trainable(&m, all);
    m.tensors[fc->weight].trainable = m.tensors[fc->bias].trainable = 1;
    if (t->mode == IP_FT_RTLL || t->mode == IP_FT_RTAL) {
        /* PyTorch's nn.Linear reset: U(+-1/sqrt(fan_in)) for weight and bias */
        float bound = 1.f / sqrtf((float)fc->in_features);
        const int ids[2] = {fc->weight, fc->bias};
        for (int j = 0; j < 2; j++) {
            ip_rng r;
            ip_rng_init(&r, t->seed, ip_stream("finetune-reinit", (uint64_t)j));
            float *w = ip_tensor_param(&m, ids[j]);
            for (size_t i = 0; i < m.tensors[ids[j]].numel; i++) w[i] = ip_rng_range(&r, -bound, bound);
        }
    }
    if (ip_metrics_set(out, "train_samples", (double)train.n, e) != 0) goto done;
    /* the authors' v1 copy-back gives each passport layer a free scale and reads its signs; their v2
     * private detection recomputes the passport gamma, as the paper does */
    ft_state st = {&test, out, t->batch, t->protocol == IP_PROTOCOL_DEEPIPR_CODE && was_v1};
    att_loop l = {.m = &m, .train = &train, .epochs = t->epochs, .batch = t->batch, .training = all,
                  .seed = t->seed, .opt = t->opt, .epoch_end = ft_epoch_end, .user = &st, .sv = &sv, .out = out};
    if (ip_att_run_loop(&l, e) != 0) goto done;
    if (t->epochs == 0 && ft_epoch_end(&l, 0, e) != 0) goto done; /* the scalars still describe the model */
    if (t->out[0] && ip_ckpt_save(&m, t->out, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Sign flip                                                                 */

void ip_flip_task_defaults(ip_flip_task *t) { ip_task_defaults(&ip_flip_def, t); }

/* Flips the signs of floor(fraction*c) channels of g chosen by (seed, stream). */
static int flip_channels(float *g, int c, double fraction, uint64_t seed, uint64_t stream, ip_err *e) {
    int k = ip_attack_count(fraction, c);
    if (k == 0) return 0;
    uint32_t *perm = malloc((size_t)c * sizeof *perm);
    if (!perm) return ip_fail(e, "out of memory");
    ip_rng r;
    ip_rng_init(&r, seed, stream);
    ip_rng_permutation(&r, perm, (size_t)c);
    for (int i = 0; i < k; i++) g[perm[i]] = -g[perm[i]];
    free(perm);
    return k;
}

/* The authors' choice (flip_attack.py, flipping): one random permutation of
 * all the channels of the n gamma vectors together, in layer order; the first
 * int(fraction x total) of it are flipped (Python's int() truncates). Returns
 * the number flipped, or -1. */
static long flip_across(float *const *g, const int *c, int n, double fraction, uint64_t seed, uint64_t stream,
                        ip_err *e) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)c[i];
    long k = (long)(fraction * (double)total);
    if (k <= 0 || total == 0) return 0;
    if ((size_t)k > total) k = (long)total;
    uint32_t *perm = malloc(total * sizeof *perm);
    size_t *start = malloc((size_t)n * sizeof *start);
    if (!perm || !start) {
        free(perm), free(start);
        return ip_fail(e, "out of memory");
    }
    for (int i = 0, off = 0; i < n; off += c[i], i++) start[i] = (size_t)off;
    ip_rng r;
    ip_rng_init(&r, seed, stream);
    ip_rng_permutation(&r, perm, total);
    for (long j = 0; j < k; j++) {
        int layer = n - 1;
        while (start[layer] > perm[j]) layer--;
        float *v = &g[layer][perm[j] - start[layer]];
        *v = -*v;
    }
    free(perm), free(start);
    return k;
}

int ip_task_flip(const ip_flip_task *t, ip_metrics *out, ip_err *e) {
    ip_model m = {0}, ref = {0};
    ip_dataset test = {0};
    int rc = -1;
    long flipped = 0, channels = 0;
    if (!(t->fraction >= 0 && t->fraction <= 1)) return ip_fail(e, "flip fraction must be in [0, 1], got %g", t->fraction);
    if (ip_att_setup(&m, NULL, &test, t->model_path, t->data, 0, t->test_limit, 0, 0, t->batch, e) != 0) goto done;
    const int across = t->protocol == IP_PROTOCOL_DEEPIPR_CODE;
    if (m.npassports) {
        /* the authors copy get_scale(True)/get_bias(True) into the free scale/bias first: the same conversion */
        ip_attack_passport_to_affine(&m);
        float *gs[IP_MAX_PASSPORTS];
        int cs[IP_MAX_PASSPORTS];
        for (int p = 0; p < m.npassports; p++) {
            const ip_passport *pp = &m.passports[p];
            gs[p] = ip_tensor_param(&m, m.ops[pp->affine_op].weight);
            cs[p] = pp->cout;
            channels += pp->cout;
            if (across) continue;
            int k = flip_channels(gs[p], pp->cout, t->fraction, t->seed, ip_stream("flip", (uint64_t)p), e);
            if (k < 0) goto done;
            flipped += k;
        }
        if (across && (flipped = flip_across(gs, cs, m.npassports, t->fraction, t->seed, ip_stream("flip-across", 0), e)) < 0) goto done;
        double det_scale = 0;
        for (int p = 0; p < m.npassports; p++) det_scale += ip_sign_detect(gs[p], m.passports[p].bits, cs[p]);
        det_scale /= m.npassports;
        /* the authors' detect_signature reads get_scale(True): the passport gamma, which no flip touches */
        double det_passport = ip_model_detect(&m, -1);
        if (ip_metrics_set(out, "detect", across ? det_passport : det_scale, e) != 0 ||
            ip_metrics_set(out, "detect_scale", det_scale, e) != 0 ||
            ip_metrics_set(out, "detect_passport", det_passport, e) != 0)
            goto done;
    } else {
        /* baseline: the blocks that are passport layers of this architecture by default */
        ip_model_cfg cfg = m.cfg;
        cfg.scheme = IP_SCHEME_V1;
        snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "default");
        if (ip_model_build(&ref, &cfg, e) != 0) {
            ip_failctx(e, "finding the default passport layers of %s", cfg.arch);
            goto done;
        }
        float *gs[IP_MAX_PASSPORTS];
        int cs[IP_MAX_PASSPORTS];
        for (int p = 0; p < ref.npassports; p++) {
            char name[IP_NAME_LEN + 16];
            snprintf(name, sizeof name, "%s.norm.weight", ref.passports[p].layer);
            int ti = ip_model_find_tensor(&m, name);
            if (ti < 0) {
                ip_fail(e, "baseline model has no tensor %s", name);
                goto done;
            }
            int c = (int)m.tensors[ti].numel;
            gs[p] = ip_tensor_param(&m, ti), cs[p] = c;
            channels += c;
            if (across) continue;
            int k = flip_channels(gs[p], c, t->fraction, t->seed, ip_stream("flip", (uint64_t)p), e);
            if (k < 0) goto done;
            flipped += k;
        }
        if (across && (flipped = flip_across(gs, cs, ref.npassports, t->fraction, t->seed, ip_stream("flip-across", 0), e)) < 0) goto done;
    }
    double acc;
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0) goto done;
    if (ip_metrics_set(out, "test_acc", acc, e) || ip_metrics_set(out, "flipped", (double)flipped, e) ||
        ip_metrics_set(out, "channels", (double)channels, e))
        goto done;
    rc = 0;
done:
    ip_model_free(&ref);
    ip_model_free(&m);
    ip_data_free(&test);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* fake2                                                                     */

void ip_fake2_task_defaults(ip_fake2_task *t) { ip_task_defaults(&ip_fake2_def, t); }

/* Detection of the gammas the forged model uses against the owner's bits. */
static double forged_detect(ip_model *m) {
    if (m->branch == IP_BRANCH_PRIVATE) return ip_model_detect(m, -1);
    double s = 0;
    for (int p = 0; p < m->npassports; p++) {
        const ip_passport *pp = &m->passports[p];
        s += ip_sign_detect(ip_tensor_param(m, m->ops[pp->affine_op].weight), pp->bits, pp->cout);
    }
    return s / m->npassports;
}

typedef struct fake_state {
    const ip_dataset *test;
    ip_metrics *out;
    int batch;
    const int8_t *owner_bits; /* fake3: the owner's bits, all layers concatenated */
    const float *keys0;       /* fake3 */
} fake_state;

static int fake2_epoch_end(att_loop *l, int epoch, ip_err *e) {
    (void)epoch;
    fake_state *s = l->user;
    double acc;
    if (ip_evaluate(l->m, s->test, s->batch, &acc, e) != 0 || ip_att_record(s->out, "epoch_test_acc", acc, e) != 0)
        return -1;
    return ip_att_record(s->out, "epoch_detect", forged_detect(l->m), e);
}

int ip_att_require_passports(const ip_model *m, const char *attack, ip_err *e) {
    if (m->npassports == 0)
        return ip_fail(e, "%s needs a passport model (scheme v1, v2 or v3); this model is %s", attack,
                       ip_scheme_name(m->cfg.scheme));
    return 0;
}

/* fake2's affine init as passport_attack_2.py (run_attack_2, the version that
 * starts from the model's gammas; docs/attacks.md "fake2") does it: every
 * passport layer's scale starts from the gamma the deployed model uses (v1:
 * the passport gamma; v2/v3: the public gamma), keeps its sign with a U(0, 1)
 * magnitude per channel (sign_().mul_(torch.rand)), int(init_flip x total)
 * channels chosen across all layers are negated, and beta = 0. Leaves the model
 * converted (public branch) with the forged affine trainable. */
static int fake2_authors_init(ip_model *m, const ip_fake2_task *t, ip_err *e) {
    float *gs[IP_MAX_PASSPORTS];
    int cs[IP_MAX_PASSPORTS];
    size_t total = 0;
    for (int p = 0; p < m->npassports; p++) total += (size_t)m->passports[p].cout;
    float *start = malloc(total * sizeof *start);
    if (!start) return ip_fail(e, "out of memory");
    /* v2/v3: the public gammas, before the conversion replaces them */
    if (m->cfg.scheme != IP_SCHEME_V1)
        for (int p = 0, off = 0; p < m->npassports; off += m->passports[p].cout, p++)
            memcpy(start + off, ip_tensor_param(m, m->ops[m->passports[p].affine_op].weight),
                   (size_t)m->passports[p].cout * sizeof *start);
    int v1 = m->cfg.scheme == IP_SCHEME_V1;
    ip_attack_passport_to_affine(m);
    ip_rng r;
    ip_rng_init(&r, t->seed, ip_stream("fake2-init-magnitude", 0));
    for (int p = 0, off = 0; p < m->npassports; off += m->passports[p].cout, p++) {
        const ip_passport *pp = &m->passports[p];
        const ip_op *aff = &m->ops[pp->affine_op];
        float *g = ip_tensor_param(m, aff->weight);
        const float *from = v1 ? g : start + off;
        for (int i = 0; i < pp->cout; i++) {
            float u = ip_rng_uniform(&r);
            g[i] = from[i] > 0 ? u : from[i] < 0 ? -u : 0.f; /* torch.sign(0) = 0 */
        }
        memset(ip_tensor_param(m, aff->bias), 0, (size_t)pp->cout * sizeof(float));
        m->tensors[aff->weight].trainable = m->tensors[aff->bias].trainable = 1;
        gs[p] = g, cs[p] = pp->cout;
    }
    free(start);
    return flip_across(gs, cs, m->npassports, t->init_flip, t->seed, ip_stream("fake2-init-across", 0), e) < 0 ? -1 : 0;
}

int ip_task_fake2(const ip_fake2_task *t, ip_metrics *out, ip_err *e) {
    ip_model m = {0};
    ip_dataset train = {0}, test = {0};
    float *keys = NULL;
    ip_saver sv = {0};
    int rc = -1;
    if ((unsigned)t->target > IP_FAKE2_PASSPORT) return ip_fail(e, "bad fake2 target %d", (int)t->target);
    if (!(t->init_flip >= 0 && t->init_flip <= 1)) return ip_fail(e, "init_flip must be in [0, 1], got %g", t->init_flip);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_fake2_def, t), e) < 0) goto done;
    if (ip_att_setup(&m, &train, &test, t->model_path, t->data, t->train_limit, t->test_limit, t->fraction, 0,
              t->batch, e) != 0)
        goto done;
    if (ip_att_require_passports(&m, "fake2", e) != 0) goto done;
    double acc;
    m.branch = IP_BRANCH_PRIVATE;
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "owner_test_acc", acc, e) != 0)
        goto done;
    ip_att_set_all_trainable(&m, 0);
    if (t->target == IP_FAKE2_AFFINE && t->protocol == IP_PROTOCOL_DEEPIPR_CODE) {
        if (fake2_authors_init(&m, t, e) != 0) goto done;
    } else if (t->target == IP_FAKE2_AFFINE) {
        /* gamma = the true signs with init_flip of them flipped, times 0.5; beta = 0 */
        ip_attack_passport_to_affine(&m);
        for (int p = 0; p < m.npassports; p++) {
            const ip_passport *pp = &m.passports[p];
            const ip_op *aff = &m.ops[pp->affine_op];
            float *g = ip_tensor_param(&m, aff->weight);
            for (int i = 0; i < pp->cout; i++) g[i] = g[i] < 0 ? -0.5f : 0.5f;
            if (flip_channels(g, pp->cout, t->init_flip, t->seed, ip_stream("fake2-init", (uint64_t)p), e) < 0)
                goto done;
            memset(ip_tensor_param(&m, aff->bias), 0, (size_t)pp->cout * sizeof(float));
            m.tensors[aff->weight].trainable = m.tensors[aff->bias].trainable = 1;
        }
    } else {
        /* random passports, uniform [-1, 1] like ip_model_init's */
        size_t nk = keys_numel(&m);
        keys = malloc(nk * sizeof *keys);
        if (!keys) {
            ip_fail(e, "out of memory for %zu passport values", nk);
            goto done;
        }
        ip_rng r;
        ip_rng_init(&r, t->seed, ip_stream("fake2-keys", 0));
        for (size_t i = 0; i < nk; i++) keys[i] = ip_rng_range(&r, -1.f, 1.f);
        keys_scatter(&m, keys);
        m.branch = IP_BRANCH_PRIVATE;
    }
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "init_test_acc", acc, e) != 0 ||
        ip_metrics_set(out, "init_detect", forged_detect(&m), e) != 0 ||
        ip_metrics_set(out, "train_samples", (double)train.n, e) != 0)
        goto done;
    fake_state st = {&test, out, t->batch, NULL, NULL};
    att_loop l = {.m = &m, .train = &train, .epochs = t->epochs, .batch = t->batch, .training = 1, .seed = t->seed,
                  .opt = t->opt, .keys = keys, .epoch_end = fake2_epoch_end, .user = &st, .sv = &sv, .out = out};
    if (ip_att_run_loop(&l, e) != 0) goto done;
    if (t->epochs == 0 && fake2_epoch_end(&l, 0, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(keys);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* fake3                                                                     */

void ip_fake3_task_defaults(ip_fake3_task *t) { ip_task_defaults(&ip_fake3_def, t); }

/* Mean over the key tensors of cos(P_fake, P_true). */
static double keys_cosine(const ip_model *m, const float *p, const float *p0) {
    double s = 0;
    size_t off = 0;
    int nt = 0;
    for (int i = 0; i < m->npassports; i++) {
        const int ids[2] = {m->passports[i].key_gamma, m->passports[i].key_beta};
        for (int j = 0; j < 2; j++, nt++) {
            size_t n = m->tensors[ids[j]].numel;
            double ab = 0, aa = 0, bb = 0;
            for (size_t k = 0; k < n; k++) {
                ab += (double)p[off + k] * p0[off + k];
                aa += (double)p[off + k] * p[off + k];
                bb += (double)p0[off + k] * p0[off + k];
            }
            s += aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
            off += n;
        }
    }
    return nt ? s / nt : 0;
}

static double owner_detect(ip_model *m, const int8_t *owner_bits) {
    ip_model_passport_affine(m);
    double s = 0;
    for (int p = 0; p < m->npassports; p++) {
        s += ip_sign_detect(m->passports[p].gamma, owner_bits, m->passports[p].cout);
        owner_bits += m->passports[p].cout;
    }
    return s / m->npassports;
}

static int fake3_epoch_end(att_loop *l, int epoch, ip_err *e) {
    (void)epoch;
    fake_state *s = l->user;
    ip_model *m = l->m;
    double acc;
    if (ip_evaluate(m, s->test, s->batch, &acc, e) != 0 || ip_att_record(s->out, "epoch_test_acc", acc, e) != 0 ||
        ip_att_record(s->out, "epoch_detect_target", ip_model_detect(m, -1), e) != 0 ||
        ip_att_record(s->out, "epoch_detect", owner_detect(m, s->owner_bits), e) != 0 ||
        ip_att_record(s->out, "epoch_cosine", keys_cosine(m, l->keys, s->keys0), e) != 0)
        return -1;
    return 0;
}

int ip_task_fake3(const ip_fake3_task *t, ip_metrics *out, ip_err *e) {
    ip_model m = {0};
    ip_dataset train = {0}, test = {0};
    float *keys = NULL, *keys0 = NULL;
    int8_t *owner_bits = NULL;
    ip_saver sv = {0};
    int rc = -1;
    if (!(t->flip_fraction >= 0 && t->flip_fraction <= 1))
        return ip_fail(e, "flip_fraction must be in [0, 1], got %g", t->flip_fraction);
    if (!(t->push_weight >= 0) || !(t->noise_std >= 0) || !(t->clip_norm >= 0))
        return ip_fail(e, "push_weight, noise_std and clip_norm must be >= 0");
    if (t->push_weight > 0 && !(t->noise_std > 0))
        return ip_fail(e, "the push-away term 1/MSE needs noise_std > 0 (it is infinite at the true passport)");
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_fake3_def, t), e) < 0) goto done;
    if (ip_att_setup(&m, &train, &test, t->model_path, t->data, t->train_limit, t->test_limit, t->fraction, 0,
              t->batch, e) != 0)
        goto done;
    if (ip_att_require_passports(&m, "fake3", e) != 0) goto done;
    m.branch = IP_BRANCH_PRIVATE;
    double acc;
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "owner_test_acc", acc, e) != 0)
        goto done;
    ip_att_set_all_trainable(&m, 0);
    size_t nk = keys_numel(&m), nbits = 0;
    for (int p = 0; p < m.npassports; p++) nbits += (size_t)m.passports[p].cout;
    keys = malloc(nk * sizeof *keys);
    keys0 = malloc(nk * sizeof *keys0);
    owner_bits = malloc(nbits);
    if (!keys || !keys0 || !owner_bits) {
        ip_fail(e, "out of memory for %zu passport values", nk);
        goto done;
    }
    /* the fake starts at the true passports plus N(0, noise_std) */
    keys_gather(&m, keys0);
    ip_rng r;
    ip_rng_init(&r, t->seed, ip_stream("fake3-noise", 0));
    for (size_t i = 0; i < nk; i++) keys[i] = keys0[i] + (float)t->noise_std * ip_rng_normal(&r);
    keys_scatter(&m, keys);
    /* the target signature: the owner's bits with flip_fraction of each layer's flipped; it replaces the
     * model's bits, so the sign loss pulls towards it and ip_model_detect measures it */
    long target_flipped = 0;
    size_t off = 0;
    for (int p = 0; p < m.npassports; p++) {
        ip_passport *pp = &m.passports[p];
        memcpy(owner_bits + off, pp->bits, (size_t)pp->cout);
        off += (size_t)pp->cout;
        int k = ip_attack_count(t->flip_fraction, pp->cout);
        if (k == 0) continue;
        uint32_t *perm = malloc((size_t)pp->cout * sizeof *perm);
        if (!perm) {
            ip_fail(e, "out of memory");
            goto done;
        }
        ip_rng pr;
        ip_rng_init(&pr, t->seed, ip_stream("fake3-target", (uint64_t)p));
        ip_rng_permutation(&pr, perm, (size_t)pp->cout);
        for (int i = 0; i < k; i++) pp->bits[perm[i]] = (int8_t)-pp->bits[perm[i]];
        free(perm);
        target_flipped += k;
    }
    if (ip_metrics_set(out, "target_flipped", (double)target_flipped, e) != 0 ||
        ip_metrics_set(out, "train_samples", (double)train.n, e) != 0)
        goto done;
    m.sign_loss_scale = 1.f;
    fake_state st = {&test, out, t->batch, owner_bits, keys0};
    att_loop l = {.m = &m, .train = &train, .epochs = t->epochs, .batch = t->batch, .training = 1, .seed = t->seed,
                  .opt = t->opt, .keys = keys, .keys0 = keys0, .push_weight = t->push_weight,
                  .clip_norm = t->clip_norm, .epoch_end = fake3_epoch_end, .user = &st, .sv = &sv, .out = out};
    if (ip_att_run_loop(&l, e) != 0) goto done;
    if (t->epochs == 0 && fake3_epoch_end(&l, 0, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(keys), free(keys0), free(owner_bits);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}
