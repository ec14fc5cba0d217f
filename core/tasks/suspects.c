/* The suspect-producing kinds distill, extract and advtrain
 * (docs/attacks.md): their parameter tables, a training loop they share, and
 * their task code. A distilled or extracted student never shares a weight
 * with the owner but learned from its outputs (softened logits, or only its
 * top-1 labels); an adversarially fine-tuned copy moves the owner's decision
 * boundary, which IPGuard's fingerprints sit near. All depend on the owner's
 * train task, so /ipguard counts them as pirated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../model/train.h"
#include "../nn/layers.h"
#include "../passport/attacks.h"
#include "../util/rng.h"
#include "../util/progress.h"
#include "param.h"
#include "tasks.h"

/* ---------------- distill ---------------- */

#define T ip_distill_task
static const ip_param distill_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the teacher (the owner's model, queried as deployed)"),
    P_STR(T, "arch", arch, "",
          "the student's architecture (docs/models.md; \"\" = the teacher's); a baseline model, no passports"),
    P_FLOAT(T, "temperature", IP_F_DOUBLE, temperature, 4, 1e-3, 1000,
            "softmax temperature T of teacher and student (Hinton et al. 2015)"),
    P_FLOAT(T, "alpha", IP_F_DOUBLE, alpha, 0, 0, 1,
            "weight of the hard-label cross-entropy; the soft loss T^2 KL gets 1 - alpha (0: pure distillation)"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1,
            "attacker's training samples as a fraction of the owner's training set size (data.train_limit)"),
    P_INT(T, "epochs", IP_F_INT, epochs, 2, 0, 100000, "distillation epochs"),
    P_INT(T, "batch", IP_F_INT, batch, 64, 1, 65536, "minibatch size (also the evaluation batch)"),
    IP_OPTIM_ROWS(T, opt),
    P_NAME_INT("seed", 1, 0, 2147483647,
               "repetition: sweep it for other students (the RNG seed derives from the task key)"),
};
_Static_assert(IP_OPT_SGD == 0 && IP_OPT_ADAM == 1, "optimizer choices in enum order");

/* the optimiser's constants no key sets (Adam's betas and eps, the lr decay at milestones) */
IP_OPTIM_INIT(distill_init, T)

/* A student's architecture (distill's and extract's `arch`) must be one the core builds ("" = the teacher's). */
static int student_arch_check(const char *arch, const char **key, char *msg, size_t cap) {
    if (!arch[0]) return 0;
    for (int i = 0; ip_arch_names[i]; i++)
        if (strcmp(ip_arch_names[i], arch) == 0) return 0;
    *key = "arch";
    size_t len = (size_t)snprintf(msg, cap, "unknown student architecture \"%s\" (one of", arch);
    for (int i = 0; ip_arch_names[i] && len < cap; i++)
        len += (size_t)snprintf(msg + len, cap - len, "%s %s", i ? "," : "", ip_arch_names[i]);
    if (len < cap) snprintf(msg + len, cap - len, ")");
    return -1;
}

static int distill_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    (void)shape;
    return student_arch_check(((const T *)p)->arch, key, msg, cap);
}

static int distill_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_distill(t, out, e); }
const ip_task_def ip_distill_def = {
    .name = "distill",
    .doc = "knowledge distillation of the model into a fresh student / IPGuard suspect; docs/attacks.md",
    IP_ROWS(distill_params),
    .size = sizeof(T),
    .init = distill_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .check = distill_check,
    .run = distill_run,
};
#undef T

void ip_distill_task_defaults(ip_distill_task *t) { ip_task_defaults(&ip_distill_def, t); }

/* ---------------- extract ---------------- */

#define T ip_extract_task
static const ip_param extract_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the owner (queried as deployed, answering with its top-1 class)"),
    P_STR(T, "arch", arch, "",
          "the student's architecture (docs/models.md; \"\" = the owner's); a baseline model, no passports"),
    P_INT(T, "queries", IP_F_SIZE, queries, 5000, 1, 100000000,
          "query budget N: images the owner labels once (query_data train: at most the training pool)"),
    P_ENUM(T, "query_data", query_data, "train", "train|noise", NULL,
           "query images: N drawn without replacement from the training split (data.train_limit), or uniform "
           "pixels in [0, 1]"),
    P_INT(T, "epochs", IP_F_INT, epochs, 10, 0, 100000, "epochs of the student on the labelled queries"),
    P_INT(T, "batch", IP_F_INT, batch, 64, 1, 65536, "minibatch size (also the query and evaluation batch)"),
    IP_OPTIM_ROWS(T, opt),
    P_NAME_INT("seed", 1, 0, 2147483647,
               "repetition: sweep it for other queries and students (the RNG seed derives from the task key)"),
};
_Static_assert(IP_EXTRACT_TRAIN == 0 && IP_EXTRACT_NOISE == 1, "query_data choices in enum order");

IP_OPTIM_INIT(extract_init, T)

static int extract_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    (void)shape;
    return student_arch_check(((const T *)p)->arch, key, msg, cap);
}

static int extract_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_extract(t, out, e); }
const ip_task_def ip_extract_def = {
    .name = "extract",
    .doc = "label-only model extraction: a fresh student trained on the model's top-1 answers to N queries / "
           "IPGuard suspect; docs/attacks.md",
    IP_ROWS(extract_params),
    .size = sizeof(T),
    .init = extract_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .check = extract_check,
    .run = extract_run,
};
#undef T

void ip_extract_task_defaults(ip_extract_task *t) { ip_task_defaults(&ip_extract_def, t); }

/* ---------------- advtrain ---------------- */

#define T ip_advtrain_task
static const ip_param advtrain_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to fine-tune adversarially (the owner's, as deployed)"),
    P_FLOAT(T, "eps", IP_F_DOUBLE, eps, 0.0313725490196, 0, 1,
            "PGD L-inf radius in [0, 1] pixel units (default 8/255), converted per channel to the normalised inputs"),
    P_FLOAT(T, "alpha", IP_F_DOUBLE, alpha, 0, 0, 1, "PGD step size in pixel units (0: eps/4)"),
    P_INT(T, "steps", IP_F_INT, steps, 7, 1, 1000, "PGD steps per minibatch (and per evaluated image)"),
    P_INT(T, "adv_eval", IP_F_SIZE, adv_eval, 500, 1, 1000000,
          "test images (the first ones) attacked for adv_test_acc and owner_adv_test_acc"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1,
            "attacker's training samples as a fraction of the owner's training set size (data.train_limit)"),
    P_INT(T, "epochs", IP_F_INT, epochs, 2, 0, 100000, "adversarial fine-tuning epochs"),
    P_INT(T, "batch", IP_F_INT, batch, 64, 1, 65536, "minibatch size (also the evaluation batch)"),
    IP_OPTIM_ROWS(T, opt),
    P_NAME_INT("seed", 1, 0, 2147483647,
               "repetition: sweep it to repeat with other random starts (the RNG seed derives from the task key)"),
};

IP_OPTIM_INIT(advtrain_init, T)
static int advtrain_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_advtrain(t, out, e); }
const ip_task_def ip_advtrain_def = {
    .name = "advtrain",
    .doc = "PGD adversarial fine-tuning of the model (Madry et al.) / IPGuard suspect; docs/attacks.md",
    IP_ROWS(advtrain_params),
    .size = sizeof(T),
    .init = advtrain_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .run = advtrain_run,
};
#undef T

void ip_advtrain_task_defaults(ip_advtrain_task *t) { ip_task_defaults(&ip_advtrain_def, t); }

/* ------------------------------------------------------------------------- */
/* The suspects' training loop                                               */

/* Minibatches of the attacker's data in a fresh shuffled order each epoch;
 * the kind's step computes the loss and the gradients of the trained model,
 * the loop takes the optimiser step, and after each epoch records
 * epoch_test_acc (the trained model) and epoch_train_loss. It checkpoints at
 * the start of every step. */
typedef struct sus_loop sus_loop;
struct sus_loop {
    ip_model *m;              /* the model trained */
    const ip_dataset *train, *test;
    int epochs, batch;
    const ip_optim_cfg *opt;
    uint64_t seed;
    const char *purpose;      /* the stream of the step's random draws, per epoch */
    /* the loss of the minibatch (xb may be rewritten) with its gradients in m->grads (zeroed here) */
    int (*step)(sus_loop *l, float *xb, const int32_t *yb, int n, ip_rng *rng, double *loss, ip_err *e);
    void *user;
    ip_saver *sv;             /* checkpoints (io/resume.h; NULL: none) */
    ip_metrics *out;          /* the task's metrics so far, saved with the state */
};

/* Where the loop is: part "loop.pos" of the task state, saved at the start
 * of a step; a resumed loop continues with that step. The epoch's sample
 * order is keyed by (seed, epoch); the step's stream (PGD's random starts)
 * is saved as it is, so a resumed loop draws what an uninterrupted one
 * would. */
typedef struct sus_pos {
    int32_t epoch, pad;
    uint64_t start;           /* index (in the epoch's order) of the step's first sample */
    uint64_t steps, seen;     /* of the epoch so far */
    double loss_sum;          /* sum over the epoch's samples of the step's loss */
    ip_rng rng;
} sus_pos;

typedef struct sus_save {
    sus_loop *l;
    const ip_optim *opt;
    const sus_pos *pos;
} sus_save;

/* The parts the result depends on: the trained model (weights, batch-norm
 * statistics), the optimiser, the position and the metrics so far. What a
 * task does before the loop (a teacher, a student's initialisation, the
 * owner's evaluations) it does again identically on a resume. */
static int sus_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    sus_save *s = user;
    if (ip_state_add_model(parts, n, "model.", s->l->m) != 0 || ip_state_add_optim(parts, n, "optim.", s->opt) != 0 ||
        ip_state_add(parts, n, "loop.pos", s->pos, sizeof *s->pos) != 0)
        return ip_fail(e, "too many state parts");
    return ip_state_add_metrics(s->l->sv, parts, n, s->l->out, e);
}

static int sus_restore(sus_loop *l, ip_optim *opt, sus_pos *pos, ip_err *e) {
    ip_saver *sv = l->sv;
    if (ip_state_get_model(sv, "model.", l->m, e) != 0 || ip_state_get_optim(sv, "optim.", opt, e) != 0 ||
        ip_state_get(&sv->loaded, sv->r.path, "loop.pos", pos, sizeof *pos, e) != 0)
        return -1;
    if (pos->epoch < 0 || pos->epoch >= l->epochs || pos->start >= l->train->n)
        return ip_fail_input(e, "task state %s: position (epoch %d, sample %llu) is outside the task: delete it to "
                                "start the task over",
                             sv->r.path, (int)pos->epoch, (unsigned long long)pos->start);
    return ip_state_get_metrics(sv, l->out, e);
}

/* Appends v to the array `name` and sets the scalar `name without "epoch_"` (the final value). */
static int record(ip_metrics *out, const char *array, double v, ip_err *e) {
    if (ip_metrics_append(out, array, v, e) != 0) return -1;
    return ip_metrics_set(out, array + strlen("epoch_"), v, e);
}

static int sus_run(sus_loop *l, ip_err *e) {
    ip_model *m = l->m;
    const ip_dataset *d = l->train;
    if (l->batch < 1 || l->epochs < 0) return ip_fail(e, "bad batch %d / epochs %d", l->batch, l->epochs);
    if (d->n == 0) return ip_fail(e, "the attacker has no training samples");
    ip_optim opt;
    if (ip_optim_init(&opt, l->opt, m->nparams, e) != 0) return -1;
    size_t sample = (size_t)d->c * d->h * d->w;
    uint32_t *order = malloc(d->n * sizeof *order);
    float *xb = malloc((size_t)l->batch * sample * sizeof *xb);
    int32_t *yb = malloc((size_t)l->batch * sizeof *yb);
    int rc = 0;
    if (!order || !xb || !yb) {
        rc = ip_fail(e, "out of memory for the training batch");
        goto done;
    }
    sus_pos pos = {0};
    int resumed = l->sv && l->sv->resumed;
    if (resumed && sus_restore(l, &opt, &pos, e) != 0) {
        rc = -1;
        goto done;
    }
    sus_save saving = {l, &opt, &pos};
    for (int epoch = pos.epoch; epoch < l->epochs; epoch++) {
        float lr = ip_optim_lr_at(l->opt, epoch);
        ip_data_epoch_order(order, d->n, l->seed, (uint64_t)epoch);
        if (!resumed) { /* a new epoch (a resumed one has its position) */
            pos = (sus_pos){.epoch = epoch};
            ip_rng_init(&pos.rng, l->seed, ip_stream(l->purpose, (uint64_t)epoch));
        }
        resumed = 0;
        for (; pos.start < d->n; pos.start += (size_t)l->batch) {
            if (l->sv) {
                char where[64];
                snprintf(where, sizeof where, "epoch %d, sample %llu", epoch + 1, (unsigned long long)pos.start);
                if (ip_saver_point(l->sv, sus_fill, &saving, where, e) != 0) {
                    rc = -1;
                    goto done;
                }
            }
            ip_progress_note((double)epoch * d->n + (double)pos.start, (double)l->epochs * d->n);
            size_t start = (size_t)pos.start;
            int n = (int)((d->n - start) < (size_t)l->batch ? d->n - start : (size_t)l->batch);
            ip_data_gather(d, order + start, (size_t)n, xb, yb, 0, &pos.rng);
            double loss;
            if (l->step(l, xb, yb, n, &pos.rng, &loss, e) != 0) {
                rc = -1;
                goto done;
            }
            if (!isfinite(loss)) {
                rc = ip_fail(e, "non-finite loss at epoch %d step %llu (lr %g): training diverged", epoch + 1,
                             (unsigned long long)pos.steps, (double)lr);
                goto done;
            }
            ip_optim_step(&opt, m, lr);
            pos.loss_sum += loss * n;
            pos.seen += (uint64_t)n;
            pos.steps++;
        }
        double acc;
        if (ip_evaluate(m, l->test, l->batch, &acc, e) != 0 || record(l->out, "epoch_test_acc", acc, e) != 0 ||
            record(l->out, "epoch_train_loss", pos.loss_sum / (double)pos.seen, e) != 0) {
            rc = -1;
            goto done;
        }
    }
done:
    ip_optim_free(&opt);
    free(order), free(xb), free(yb);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* The students of distill and extract                                       */

/* Opens the owner as deployed (as finetune queries it: v2/v3 answer with
 * the public branch; v1's only branch computes with its passports), in eval
 * mode, with its test split, and builds the student: a baseline of `arch`
 * ("" = the owner's) with the owner's input shape, classes, normalisation and
 * norm kind, initialised from seed as train initialises a model. Sets
 * teacher_test_acc. The caller frees teacher, student and test. */
static int open_teacher_student(ip_model *teacher, ip_model *student, ip_dataset *test, const char *model_path,
                                const char *data, size_t test_limit, const char *arch, uint64_t seed, int batch,
                                ip_metrics *out, ip_err *e) {
    if (ip_task_open(teacher, test, model_path, data, test_limit, e) != 0) return -1;
    if (test->n == 0) return ip_fail_input(e, "the test split of %s is empty", data);
    if (teacher->npassports && teacher->cfg.scheme != IP_SCHEME_V1) teacher->branch = IP_BRANCH_PUBLIC;
    teacher->sign_loss_scale = 0;
    if (ip_model_plan(teacher, batch, e) != 0) return -1;
    ip_model_cfg cfg = teacher->cfg;
    if (arch[0]) snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.scheme = IP_SCHEME_BASELINE;
    snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "none");
    /* the teacher only runs forward: the student alone needs activation gradients */
    if (ip_model_build(student, &cfg, e) != 0 || ip_model_init(student, seed, "", e) != 0 ||
        ip_model_plan(student, batch, e) != 0 || ip_model_plan_backward(student, e) != 0)
        return -1;
    double acc;
    if (ip_evaluate(teacher, test, batch, &acc, e) != 0) return -1;
    return ip_metrics_set(out, "teacher_test_acc", acc, e);
}

/* Fraction of test samples where teacher and student predict the same class. */
static int agreement(ip_model *a, ip_model *b, const ip_dataset *test, int batch, double *agree, ip_err *e) {
    int32_t *pa = malloc(test->n * sizeof *pa), *pb = malloc(test->n * sizeof *pb);
    int rc = -1;
    if (!pa || !pb) {
        ip_fail(e, "out of memory");
        goto done;
    }
    if (ip_predict(a, test, batch, pa, e) != 0 || ip_predict(b, test, batch, pb, e) != 0) goto done;
    size_t same = 0;
    for (size_t i = 0; i < test->n; i++) same += pa[i] == pb[i];
    *agree = (double)same / (double)test->n;
    rc = 0;
done:
    free(pa), free(pb);
    return rc;
}

/* After training: the student's test_acc, its agreement with the teacher, and its checkpoint ("" = none). */
static int finish_student(ip_model *teacher, ip_model *student, const ip_dataset *test, int batch,
                          const char *out_path, ip_metrics *out, ip_err *e) {
    double acc, agree;
    if (ip_evaluate(student, test, batch, &acc, e) != 0 || ip_metrics_set(out, "test_acc", acc, e) != 0 ||
        agreement(teacher, student, test, batch, &agree, e) != 0 || ip_metrics_set(out, "agreement", agree, e) != 0)
        return -1;
    return out_path[0] ? ip_ckpt_save(student, out_path, e) : 0;
}

/* The cross-entropy of the minibatch's labels, the model in training mode (extract; advtrain after its PGD) */
static int xent_step(sus_loop *l, float *xb, const int32_t *yb, int n, ip_rng *rng, double *loss, ip_err *e) {
    (void)rng, (void)e;
    ip_model *m = l->m;
    ip_model_zero_grad(m);
    const float *logits = ip_model_forward(m, xb, n, 1);
    *loss = xent_forward_backward(m->dlogits, logits, yb, n, m->cfg.classes, 1.f, NULL);
    ip_model_backward(m, m->dlogits, NULL);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* distill                                                                   */

typedef struct distill_step_ctx {
    ip_model *teacher;
    float *tlogits, *dhard;   /* batch x classes each (dhard: alpha > 0 only) */
    float temperature, soft, hard;
} distill_step_ctx;

/* (1 - alpha) T^2 KL(teacher || student) + alpha CE; the teacher in eval mode, the student in training mode */
static int distill_step(sus_loop *l, float *xb, const int32_t *yb, int n, ip_rng *rng, double *loss, ip_err *e) {
    (void)rng, (void)e;
    distill_step_ctx *c = l->user;
    ip_model *s = l->m;
    int k = s->cfg.classes;
    /* the teacher's logits are copied out: they must outlive the student's passes */
    memcpy(c->tlogits, ip_model_infer(c->teacher, xb, n), (size_t)n * (size_t)k * sizeof *c->tlogits);
    ip_model_zero_grad(s);
    const float *logits = ip_model_forward(s, xb, n, 1);
    *loss = c->soft * kd_forward_backward(s->dlogits, logits, c->tlogits, n, k, c->temperature, c->soft);
    if (c->dhard) {
        *loss += c->hard * xent_forward_backward(c->dhard, logits, yb, n, k, c->hard, NULL);
        for (size_t i = 0; i < (size_t)n * (size_t)k; i++) s->dlogits[i] += c->dhard[i];
    }
    ip_model_backward(s, s->dlogits, NULL);
    return 0;
}

int ip_task_distill(const ip_distill_task *t, ip_metrics *out, ip_err *e) {
    ip_model teacher = {0}, student = {0};
    ip_dataset train = {0}, test = {0};
    ip_saver sv = {0};
    float *tlogits = NULL, *dhard = NULL;
    int rc = -1;
    if (!(t->temperature > 0)) return ip_fail(e, "temperature must be > 0, got %g", t->temperature);
    if (!(t->alpha >= 0 && t->alpha <= 1)) return ip_fail(e, "alpha must be in [0, 1], got %g", t->alpha);
    if (t->batch < 1 || t->epochs < 0) return ip_fail(e, "bad batch %d / epochs %d", t->batch, t->epochs);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_distill_def, t), e) < 0) goto done;
    if (open_teacher_student(&teacher, &student, &test, t->model_path, t->data, t->test_limit, t->arch, t->seed,
                             t->batch, out, e) != 0)
        goto done;
    if (ip_attack_train_data(&train, t->data, t->train_limit, t->fraction, 0, e) != 0 ||
        ip_data_match_model(&train, &teacher, e) != 0 ||
        ip_metrics_set(out, "train_samples", (double)train.n, e) != 0)
        goto done;
    size_t nk = (size_t)t->batch * (size_t)student.cfg.classes;
    tlogits = malloc(nk * sizeof *tlogits);
    dhard = t->alpha > 0 ? malloc(nk * sizeof *dhard) : NULL;
    if (!tlogits || (t->alpha > 0 && !dhard)) {
        ip_fail(e, "out of memory for the distillation buffers");
        goto done;
    }
    distill_step_ctx ctx = {&teacher, tlogits, dhard, (float)t->temperature, (float)(1 - t->alpha), (float)t->alpha};
    sus_loop l = {.m = &student, .train = &train, .test = &test, .epochs = t->epochs, .batch = t->batch,
                  .opt = &t->opt, .seed = t->seed, .purpose = "distill-batch", .step = distill_step, .user = &ctx,
                  .sv = &sv, .out = out};
    if (sus_run(&l, e) != 0 || finish_student(&teacher, &student, &test, t->batch, t->out, out, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(tlogits), free(dhard);
    ip_model_free(&student);
    ip_model_free(&teacher);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* extract                                                                   */

/* The query images, normalised as the owner expects, with their true labels
 * (train) or none (noise: labels 0). Both are functions of the task seed
 * alone: train takes the first N of a permutation of the pool keyed by
 * (seed, "extract-queries"), noise draws image i from the stream
 * (seed, ("extract-noise", i)); so a smaller budget's queries are the first
 * ones of a larger budget's, and a resumed task rebuilds the same set. */
static int extract_queries(const ip_extract_task *t, const ip_model *owner, const ip_dataset *test, ip_dataset *q,
                           ip_err *e) {
    size_t n = t->queries;
    if (t->query_data == IP_EXTRACT_NOISE) {
        if (ip_data_alloc(q, n, test->c, test->h, test->w, test->classes, e) != 0) return -1;
        float lo[4], hi[4]; /* pixels [0, 1] under the owner's normalisation */
        ip_data_input_range(test, lo, hi);
        size_t plane = (size_t)test->h * (size_t)test->w, sample = (size_t)test->c * plane;
        for (size_t i = 0; i < n; i++) {
            ip_rng r;
            ip_rng_init(&r, t->seed, ip_stream("extract-noise", (uint64_t)i));
            float *x = q->x + i * sample;
            for (size_t j = 0; j < sample; j++) x[j] = ip_rng_range(&r, lo[j / plane], hi[j / plane]);
            q->y[i] = 0;
        }
    } else {
        ip_dataset pool = {0};
        uint32_t *perm = NULL;
        int rc = -1;
        if (ip_attack_train_data(&pool, t->data, t->train_limit, 1, 0, e) != 0 ||
            ip_data_match_model(&pool, owner, e) != 0)
            goto pool_done;
        if (n > pool.n) {
            char limit[64] = "";
            if (t->train_limit) snprintf(limit, sizeof limit, " up to data.train_limit %zu", t->train_limit);
            ip_fail_input(e,
                          "queries: %zu query images asked but the pool of query_data train (the training split%s) "
                          "has %zu; lower queries or use query_data: noise",
                          n, limit, pool.n);
            goto pool_done;
        }
        if (pool.n > UINT32_MAX) { /* the permutation's indices */
            ip_fail_input(e, "the training split of %s has %zu samples, more than 2^32", t->data, pool.n);
            goto pool_done;
        }
        if (!(perm = malloc(pool.n * sizeof *perm))) {
            ip_fail(e, "out of memory for the query draw");
            goto pool_done;
        }
        ip_rng r;
        ip_rng_init(&r, t->seed, ip_stream("extract-queries", 0));
        ip_rng_permutation(&r, perm, pool.n);
        if (ip_data_alloc(q, n, pool.c, pool.h, pool.w, pool.classes, e) != 0) goto pool_done;
        ip_data_gather(&pool, perm, n, q->x, q->y, 0, NULL);
        rc = 0;
    pool_done:
        free(perm);
        ip_data_free(&pool);
        if (rc != 0) return -1;
    }
    memcpy(q->mean, owner->cfg.in_mean, sizeof q->mean);
    memcpy(q->std, owner->cfg.in_std, sizeof q->std);
    q->normalised = 1;
    snprintf(q->name, sizeof q->name, "extract-queries");
    return 0;
}

/* The owner answers each query once: its top-1 class replaces the label.
 * *label_acc = the fraction of answers equal to the label they replace. */
static int owner_answers(ip_model *owner, ip_dataset *q, int batch, double *label_acc, ip_err *e) {
    int32_t *ans = malloc(q->n * sizeof *ans);
    if (!ans) return ip_fail(e, "out of memory for the owner's answers");
    if (ip_predict(owner, q, batch, ans, e) != 0) {
        free(ans);
        return -1;
    }
    size_t same = 0;
    for (size_t i = 0; i < q->n; i++) same += ans[i] == q->y[i];
    *label_acc = (double)same / (double)q->n;
    memcpy(q->y, ans, q->n * sizeof *ans);
    free(ans);
    return 0;
}

int ip_task_extract(const ip_extract_task *t, ip_metrics *out, ip_err *e) {
    ip_model teacher = {0}, student = {0};
    ip_dataset queries = {0}, test = {0};
    ip_saver sv = {0};
    int rc = -1;
    if (t->queries < 1) return ip_fail_input(e, "queries must be at least 1, got %zu", t->queries);
    if (t->query_data != IP_EXTRACT_TRAIN && t->query_data != IP_EXTRACT_NOISE)
        return ip_fail(e, "bad query_data %d", t->query_data);
    if (t->batch < 1 || t->epochs < 0) return ip_fail(e, "bad batch %d / epochs %d", t->batch, t->epochs);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_extract_def, t), e) < 0) goto done;
    if (open_teacher_student(&teacher, &student, &test, t->model_path, t->data, t->test_limit, t->arch, t->seed,
                             t->batch, out, e) != 0)
        goto done;
    double label_acc = 0;
    if (extract_queries(t, &teacher, &test, &queries, e) != 0 ||
        owner_answers(&teacher, &queries, t->batch, &label_acc, e) != 0 ||
        ip_metrics_set(out, "queries", (double)queries.n, e) != 0 ||
        (t->query_data == IP_EXTRACT_TRAIN && ip_metrics_set(out, "query_label_acc", label_acc, e) != 0))
        goto done;
    sus_loop l = {.m = &student, .train = &queries, .test = &test, .epochs = t->epochs, .batch = t->batch,
                  .opt = &t->opt, .seed = t->seed, .purpose = "extract-batch", .step = xent_step, .sv = &sv,
                  .out = out};
    if (sus_run(&l, e) != 0 || finish_student(&teacher, &student, &test, t->batch, t->out, out, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    ip_model_free(&student);
    ip_model_free(&teacher);
    ip_data_free(&queries);
    ip_data_free(&test);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* advtrain                                                                  */

/* PGD in the normalised input space: per channel, the radius and the step
 * in pixel units divided by the channel's std, and the valid box [lo, hi] =
 * pixels [0, 1] under the model's normalisation. */
typedef struct pgd {
    float eps[4], step[4], lo[4], hi[4];
    int steps;
    float *x0, *dx;           /* batch samples each */
} pgd;

/* Replaces x (n samples, normalised) by PGD adversarial examples of m for
 * labels y: a start drawn uniformly in the eps box (rng; NULL: x itself),
 * then `steps` signed-gradient steps of the cross-entropy, each projected
 * onto the eps box around x and the valid box. The model runs in eval mode;
 * only input gradients are computed (its parameter gradients are untouched). */
static void pgd_attack(ip_model *m, const pgd *p, float *x, const int32_t *y, int n, ip_rng *rng) {
    int C = m->cfg.in_c;
    size_t hw = (size_t)m->cfg.in_h * m->cfg.in_w, d = (size_t)C * hw, total = (size_t)n * d;
    memcpy(p->x0, x, total * sizeof *x);
    if (rng)
        for (size_t i = 0; i < total; i++) {
            int c = (int)(i % d / hw);
            float v = x[i] + ip_rng_range(rng, -p->eps[c], p->eps[c]);
            x[i] = v < p->lo[c] ? p->lo[c] : v > p->hi[c] ? p->hi[c] : v;
        }
    for (int s = 0; s < p->steps; s++) {
        const float *logits = ip_model_forward(m, x, n, 0);
        xent_forward_backward(m->dlogits, logits, y, n, m->cfg.classes, 1.f, NULL);
        memset(p->dx, 0, total * sizeof *p->dx);
        ip_model_backward_input(m, m->dlogits, p->dx);
        for (size_t i = 0; i < total; i++) {
            int c = (int)(i % d / hw);
            float g = p->dx[i], v = x[i] + (g > 0 ? p->step[c] : g < 0 ? -p->step[c] : 0.f);
            float a = p->x0[i] - p->eps[c], b = p->x0[i] + p->eps[c];
            v = v < a ? a : v > b ? b : v;
            x[i] = v < p->lo[c] ? p->lo[c] : v > p->hi[c] ? p->hi[c] : v;
        }
    }
}

/* Accuracy of m on PGD examples of the first `count` test images (no random start: the same examples for
 * every run and rank). */
static int adv_accuracy(ip_model *m, const pgd *p, const ip_dataset *test, size_t count, int batch, double *acc,
                        ip_err *e) {
    size_t d = (size_t)test->c * test->h * test->w, ok = 0;
    float *xb = malloc((size_t)batch * d * sizeof *xb);
    int32_t *pred = malloc((size_t)batch * sizeof *pred);
    if (!xb || !pred) {
        free(xb), free(pred);
        return ip_fail(e, "out of memory");
    }
    if (count > test->n) count = test->n;
    for (size_t start = 0; start < count; start += (size_t)batch) {
        int n = (int)(count - start < (size_t)batch ? count - start : (size_t)batch);
        memcpy(xb, test->x + start * d, (size_t)n * d * sizeof *xb);
        pgd_attack(m, p, xb, test->y + start, n, NULL);
        argmax_rows(pred, ip_model_infer(m, xb, n), n, m->cfg.classes);
        for (int i = 0; i < n; i++) ok += pred[i] == test->y[start + (size_t)i];
    }
    free(xb), free(pred);
    *acc = (double)ok / (double)count;
    return 0;
}

/* Madry et al.: the cross-entropy of PGD examples (random start), the model in training mode */
static int advtrain_step(sus_loop *l, float *xb, const int32_t *yb, int n, ip_rng *rng, double *loss, ip_err *e) {
    pgd_attack(l->m, l->user, xb, yb, n, rng);
    return xent_step(l, xb, yb, n, rng, loss, e);
}

int ip_task_advtrain(const ip_advtrain_task *t, ip_metrics *out, ip_err *e) {
    ip_model m = {0};
    ip_dataset train = {0}, test = {0};
    ip_saver sv = {0};
    pgd p = {0};
    int rc = -1;
    if (!(t->eps >= 0 && t->eps <= 1) || !(t->alpha >= 0 && t->alpha <= 1))
        return ip_fail(e, "eps and alpha must be in [0, 1] (pixel units), got %g and %g", t->eps, t->alpha);
    if (t->steps < 1 || t->batch < 1 || t->epochs < 0 || t->adv_eval < 1)
        return ip_fail(e, "bad steps %d / batch %d / epochs %d / adv_eval %zu", t->steps, t->batch, t->epochs,
                       t->adv_eval);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_advtrain_def, t), e) < 0) goto done;
    if (ip_task_open(&m, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    if (test.n == 0) {
        ip_fail_input(e, "the test split of %s is empty", t->data);
        goto done;
    }
    if (ip_attack_train_data(&train, t->data, t->train_limit, t->fraction, 0, e) != 0 ||
        ip_data_match_model(&train, &m, e) != 0)
        goto done;
    /* the deployed network, every parameter trainable (as finetune's ftal) */
    if (m.cfg.scheme == IP_SCHEME_V1) ip_attack_passport_to_affine(&m);
    else if (m.npassports) m.branch = IP_BRANCH_PUBLIC;
    m.sign_loss_scale = 0;
    for (int i = 0; i < m.ntensors; i++)
        if (m.tensors[i].kind == IP_TENSOR_PARAM) m.tensors[i].trainable = 1;
    if (ip_model_plan(&m, t->batch, e) != 0 || ip_model_plan_backward(&m, e) != 0) goto done;
    ip_data_input_range(&test, p.lo, p.hi);
    double step = t->alpha > 0 ? t->alpha : t->eps / 4;
    for (int c = 0; c < m.cfg.in_c; c++) {
        p.eps[c] = (float)(t->eps / m.cfg.in_std[c]);
        p.step[c] = (float)(step / m.cfg.in_std[c]);
    }
    p.steps = t->steps;
    size_t d = (size_t)test.c * test.h * test.w;
    p.x0 = malloc((size_t)t->batch * d * sizeof *p.x0);
    p.dx = malloc((size_t)t->batch * d * sizeof *p.dx);
    if (!p.x0 || !p.dx) {
        ip_fail(e, "out of memory for the PGD buffers");
        goto done;
    }
    double acc;
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "owner_test_acc", acc, e) != 0 ||
        adv_accuracy(&m, &p, &test, t->adv_eval, t->batch, &acc, e) != 0 ||
        ip_metrics_set(out, "owner_adv_test_acc", acc, e) != 0 ||
        ip_metrics_set(out, "train_samples", (double)train.n, e) != 0 ||
        ip_metrics_set(out, "adv_eval", (double)(t->adv_eval < test.n ? t->adv_eval : test.n), e) != 0)
        goto done;
    sus_loop l = {.m = &m, .train = &train, .test = &test, .epochs = t->epochs, .batch = t->batch, .opt = &t->opt,
                  .seed = t->seed, .purpose = "advtrain-start", .step = advtrain_step, .user = &p, .sv = &sv,
                  .out = out};
    if (sus_run(&l, e) != 0) goto done;
    if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "test_acc", acc, e) != 0 ||
        adv_accuracy(&m, &p, &test, t->adv_eval, t->batch, &acc, e) != 0 ||
        ip_metrics_set(out, "adv_test_acc", acc, e) != 0)
        goto done;
    if (t->out[0] && ip_ckpt_save(&m, t->out, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(p.x0), free(p.dx);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}
