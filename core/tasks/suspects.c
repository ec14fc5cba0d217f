/* The suspect-producing kind distill (docs/attacks.md "distill"): its
 * parameter table and its task code. A distilled student is a model the
 * owner never trained but that learned from the owner's outputs: IPGuard
 * counts it as pirated (it depends on the owner's train task). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../model/train.h"
#include "../nn/layers.h"
#include "../passport/attacks.h"
#include "../util/rng.h"
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
    P_ENUM(T, "optimizer", opt.kind, "sgd", "sgd|adam", NULL, "optimiser"),
    P_FLOAT(T, "lr", IP_F_FLOAT, opt.lr, 0.01, 1e-9, 10, "learning rate"),
    P_FLOAT(T, "momentum", IP_F_FLOAT, opt.momentum, 0.9, 0, 1, "SGD momentum"),
    P_FLOAT(T, "weight_decay", IP_F_FLOAT, opt.weight_decay, 5e-4, 0, 1, "L2 weight decay"),
    {"milestones", IP_P_INTLIST, IP_F_MILESTONES, IP_FIELD_(T, opt), "", 0, 1, 100000, NULL, NULL,
     "epochs where lr is multiplied by 0.1, increasing, e.g. \"100,150\""},
    P_NAME_INT("seed", 1, 0, 2147483647,
               "repetition: sweep it for other students (the RNG seed derives from the task key)"),
};
_Static_assert(IP_OPT_SGD == 0 && IP_OPT_ADAM == 1, "optimizer choices in enum order");

/* the optimiser's constants no key sets (Adam's betas and eps, the lr decay at milestones) */
static void distill_init(void *p) { ip_optim_defaults(&((T *)p)->opt, IP_OPT_SGD); }

/* The student's architecture must be one the core builds ("" = the teacher's). */
static int distill_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    (void)shape;
    const T *t = p;
    if (!t->arch[0]) return 0;
    for (int i = 0; ip_arch_names[i]; i++)
        if (strcmp(ip_arch_names[i], t->arch) == 0) return 0;
    *key = "arch";
    size_t len = (size_t)snprintf(msg, cap, "unknown student architecture \"%s\" (one of", t->arch);
    for (int i = 0; ip_arch_names[i] && len < cap; i++)
        len += (size_t)snprintf(msg + len, cap - len, "%s %s", i ? "," : "", ip_arch_names[i]);
    if (len < cap) snprintf(msg + len, cap - len, ")");
    return -1;
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

/* Where the distillation loop is: part "distill.pos" of the task state,
 * saved at the start of a step; a resumed loop continues with that step.
 * The epoch's sample order is keyed by (seed, epoch); the gather stream is
 * saved as it is (no augmentation draws from it today, but a resumed loop
 * must draw what an uninterrupted one would if one did). */
typedef struct distill_pos {
    int32_t epoch, pad;
    uint64_t start;           /* index (in the epoch's order) of the step's first sample */
    uint64_t steps, seen;     /* of the epoch so far */
    double loss_sum;          /* sum over the epoch's samples of the step's loss */
    ip_rng aug;
} distill_pos;

typedef struct distill_save {
    const ip_model *student;
    const ip_optim *opt;
    const distill_pos *pos;
    ip_saver *sv;
    const ip_metrics *out;
} distill_save;

/* The parts the result depends on: the student (weights, batch-norm
 * statistics), the optimiser, the position and the metrics so far. The
 * teacher is only evaluated (eval mode): it never changes. */
static int distill_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    distill_save *s = user;
    if (ip_state_add_model(parts, n, "model.", s->student) != 0 || ip_state_add_optim(parts, n, "optim.", s->opt) != 0 ||
        ip_state_add(parts, n, "distill.pos", s->pos, sizeof *s->pos) != 0)
        return ip_fail(e, "too many state parts");
    return ip_state_add_metrics(s->sv, parts, n, s->out, e);
}

static int distill_restore(ip_saver *sv, ip_model *student, ip_optim *opt, distill_pos *pos, int epochs, size_t n,
                           ip_metrics *out, ip_err *e) {
    if (ip_state_get_model(sv, "model.", student, e) != 0 || ip_state_get_optim(sv, "optim.", opt, e) != 0 ||
        ip_state_get(&sv->loaded, sv->r.path, "distill.pos", pos, sizeof *pos, e) != 0)
        return -1;
    if (pos->epoch < 0 || pos->epoch >= epochs || pos->start >= n)
        return ip_fail_input(e, "task state %s: position (epoch %d, sample %llu) is outside the task: delete it to "
                                "start the task over",
                             sv->r.path, (int)pos->epoch, (unsigned long long)pos->start);
    return ip_state_get_metrics(sv, out, e);
}

/* Appends v to the array `name` and sets the scalar `name without "epoch_"` (the final value). */
static int record(ip_metrics *out, const char *array, double v, ip_err *e) {
    if (ip_metrics_append(out, array, v, e) != 0) return -1;
    return ip_metrics_set(out, array + strlen("epoch_"), v, e);
}

typedef struct distill_loop {
    ip_model *teacher, *student;
    const ip_dataset *train, *test;
    const ip_distill_task *t;
    ip_saver *sv;
    ip_metrics *out;
} distill_loop;

/* Minibatches of the attacker's data through the teacher (eval mode) and
 * the student (training mode); loss (1 - alpha) T^2 KL + alpha CE; an
 * optimiser step on the student. Checkpoints at the start of every step. */
static int distill_train(distill_loop *l, ip_err *e) {
    const ip_distill_task *t = l->t;
    ip_model *s = l->student;
    const ip_dataset *d = l->train;
    int k = s->cfg.classes, cap = t->batch;
    if (d->n == 0) return ip_fail(e, "the attacker has no training samples");
    ip_optim opt;
    if (ip_optim_init(&opt, &t->opt, s->nparams, e) != 0) return -1;
    size_t sample = (size_t)d->c * d->h * d->w;
    uint32_t *order = malloc(d->n * sizeof *order);
    float *xb = malloc((size_t)cap * sample * sizeof *xb);
    int32_t *yb = malloc((size_t)cap * sizeof *yb);
    float *tlogits = malloc((size_t)cap * (size_t)k * sizeof *tlogits);
    float *dhard = t->alpha > 0 ? malloc((size_t)cap * (size_t)k * sizeof *dhard) : NULL;
    int rc = 0;
    if (!order || !xb || !yb || !tlogits || (t->alpha > 0 && !dhard)) {
        rc = ip_fail(e, "out of memory for the distillation buffers");
        goto done;
    }
    distill_pos pos = {0};
    int resumed = l->sv && l->sv->resumed;
    if (resumed && distill_restore(l->sv, s, &opt, &pos, t->epochs, d->n, l->out, e) != 0) {
        rc = -1;
        goto done;
    }
    distill_save saving = {s, &opt, &pos, l->sv, l->out};
    float soft = (float)(1 - t->alpha), hard = (float)t->alpha;
    for (int epoch = pos.epoch; epoch < t->epochs; epoch++) {
        float lr = ip_optim_lr_at(&t->opt, epoch);
        ip_data_epoch_order(order, d->n, t->seed, (uint64_t)epoch);
        if (!resumed) { /* a new epoch (a resumed one has its position) */
            pos = (distill_pos){.epoch = epoch};
            ip_rng_init(&pos.aug, t->seed, ip_stream("distill-augment", (uint64_t)epoch));
        }
        resumed = 0;
        for (; pos.start < d->n; pos.start += (size_t)t->batch) {
            if (l->sv) {
                char where[64];
                snprintf(where, sizeof where, "epoch %d, sample %llu", epoch + 1, (unsigned long long)pos.start);
                if (ip_saver_point(l->sv, distill_fill, &saving, where, e) != 0) {
                    rc = -1;
                    goto done;
                }
            }
            size_t start = (size_t)pos.start;
            int n = (int)((d->n - start) < (size_t)t->batch ? d->n - start : (size_t)t->batch);
            ip_data_gather(d, order + start, (size_t)n, xb, yb, 0, &pos.aug);
            /* the teacher's logits are copied out: they must outlive the student's passes */
            memcpy(tlogits, ip_model_forward(l->teacher, xb, n, 0), (size_t)n * (size_t)k * sizeof *tlogits);
            ip_model_zero_grad(s);
            const float *logits = ip_model_forward(s, xb, n, 1);
            double loss = soft * kd_forward_backward(s->dlogits, logits, tlogits, n, k, (float)t->temperature, soft);
            if (dhard) {
                loss += hard * xent_forward_backward(dhard, logits, yb, n, k, hard, NULL);
                for (size_t i = 0; i < (size_t)n * (size_t)k; i++) s->dlogits[i] += dhard[i];
            }
            if (!isfinite(loss)) {
                rc = ip_fail(e, "non-finite loss at epoch %d step %llu (lr %g): distillation diverged", epoch + 1,
                             (unsigned long long)pos.steps, (double)lr);
                goto done;
            }
            ip_model_backward(s, s->dlogits, NULL);
            ip_optim_step(&opt, s, lr);
            pos.loss_sum += loss * n;
            pos.seen += (uint64_t)n;
            pos.steps++;
        }
        double acc;
        if (ip_evaluate(s, l->test, t->batch, &acc, e) != 0 || record(l->out, "epoch_test_acc", acc, e) != 0 ||
            record(l->out, "epoch_train_loss", pos.loss_sum / (double)pos.seen, e) != 0) {
            rc = -1;
            goto done;
        }
    }
done:
    ip_optim_free(&opt);
    free(order), free(xb), free(yb), free(tlogits), free(dhard);
    return rc;
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

int ip_task_distill(const ip_distill_task *t, ip_metrics *out, ip_err *e) {
    ip_model teacher = {0}, student = {0};
    ip_dataset train = {0}, test = {0};
    ip_saver sv = {0};
    int rc = -1;
    if (!(t->temperature > 0)) return ip_fail(e, "temperature must be > 0, got %g", t->temperature);
    if (!(t->alpha >= 0 && t->alpha <= 1)) return ip_fail(e, "alpha must be in [0, 1], got %g", t->alpha);
    if (t->batch < 1 || t->epochs < 0) return ip_fail(e, "bad batch %d / epochs %d", t->batch, t->epochs);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_distill_def, t), e) < 0) goto done;
    if (ip_task_open(&teacher, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    if (test.n == 0) {
        ip_fail_input(e, "the test split of %s is empty", t->data);
        goto done;
    }
    if (ip_attack_train_data(&train, t->data, t->train_limit, t->fraction, 0, e) != 0 ||
        ip_data_match_model(&train, &teacher, e) != 0)
        goto done;
    /* the teacher as deployed (as finetune queries it): v2/v3 answer with the public branch; v1's only
     * branch computes with its passports */
    if (teacher.npassports && teacher.cfg.scheme != IP_SCHEME_V1) teacher.branch = IP_BRANCH_PUBLIC;
    teacher.sign_loss_scale = 0;
    if (ip_model_plan(&teacher, t->batch, e) != 0) goto done;
    /* the student: a baseline of the chosen architecture with the teacher's input shape, classes,
     * normalisation and norm kind */
    ip_model_cfg cfg = teacher.cfg;
    if (t->arch[0]) snprintf(cfg.arch, sizeof cfg.arch, "%s", t->arch);
    cfg.scheme = IP_SCHEME_BASELINE;
    snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "none");
    if (ip_model_build(&student, &cfg, e) != 0 || ip_model_init(&student, t->seed, "", e) != 0 ||
        ip_model_plan(&student, t->batch, e) != 0)
        goto done;
    double acc;
    if (ip_evaluate(&teacher, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "teacher_test_acc", acc, e) != 0 ||
        ip_metrics_set(out, "train_samples", (double)train.n, e) != 0)
        goto done;
    distill_loop l = {&teacher, &student, &train, &test, t, &sv, out};
    if (distill_train(&l, e) != 0) goto done;
    double agree;
    if (ip_evaluate(&student, &test, t->batch, &acc, e) != 0 || ip_metrics_set(out, "test_acc", acc, e) != 0 ||
        agreement(&teacher, &student, &test, t->batch, &agree, e) != 0 ||
        ip_metrics_set(out, "agreement", agree, e) != 0)
        goto done;
    if (t->out[0] && ip_ckpt_save(&student, t->out, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    ip_model_free(&student);
    ip_model_free(&teacher);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}
