/* The kinds train, eval and prune: their parameter tables (param.h), the
 * train kind's signature check, and their task code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/cache.h"
#include "../io/ckpt.h"
#include "../io/data.h"
#include "../model/prune.h"
#include "../model/train.h"
#include "../passport/passport_keys.h"
#include "../passport/trigger.h"
#include "../util/rng.h"
#include "param.h"
#include "tasks.h"

/* ---------------- train (a spec's `models` section) ---------------- */

/* weight_decay's default "auto" (-1): the protocol's, resolved in one place
 * (ip_train_task_weight_decay); the authors train owners with 1e-4
 * (experiments/classification.py, docs/passports.md "Protocols", 8) */
#define TRAIN_WD_AUTO -1
#define TRAIN_WD_DEEPIPR_CODE 1e-4
#define TRAIN_WD_DOC                                                                                                \
    "L2 weight decay; " IP_XSTR(TRAIN_WD_AUTO) " (auto) = the protocol's: " IP_XSTR(IP_WEIGHT_DECAY_PAPER)            \
    " under paper, " IP_XSTR(TRAIN_WD_DEEPIPR_CODE) " under deepipr-code"

#define T ip_train_task
static const ip_param train_params[] = {
    P_ENUM_STR(T, "arch", model.arch, "small-p", "small-p|small-p-narrow|small-p-wide|alexnet-p|resnet18-p",
               "architecture (docs/models.md)"),
    P_ENUM(T, "norm", model.norm, "bn", "bn|gn", NULL, "normalisation: batch norm or group norm (C/16 groups)"),
    P_ENUM(T, "conv", model.conv, "fast", "fast|precise", NULL,
           "convolution algorithms: fast (Winograd F(4x4) where faster) or precise (Winograd only as F(2x2, 3x3): "
           "PyTorch's float32 error, slower; docs/performance.md \"Numerics\")"),
    P_ENUM(T, "scheme", model.scheme, "baseline", "baseline|v1|v2|v3", NULL, "passport scheme (REFERENCE.md section 1)"),
    P_STR(T, "passport_layers", model.passport_layers, "default",
          "default | none | comma list of conv blocks, e.g. \"block1,block2\""),
    P_STR(T, "signature", signature, "", "text embedded in every passport layer (8 bits per character)"),
    P_INT(T, "triggers", IP_F_SIZE, triggers, 100, 1, IP_TRIGGER_MAX_COUNT,
          "v3: trigger set size (noise images with random labels from the seed, docs/passports.md); ignored otherwise"),
    P_INT(T, "epochs", IP_F_INT, train.epochs, 2, 0, 100000, "training epochs"),
    P_INT(T, "batch", IP_F_INT, train.batch, 64, 1, 65536, "minibatch size"),
    IP_OPTIM_ROWS_WD(T, train.opt, IP_WEIGHT_DECAY_ROW(T, train.opt, TRAIN_WD_AUTO, TRAIN_WD_AUTO, TRAIN_WD_DOC)),
    P_BOOL(T, "augment", train.augment, false, "random crop (pad 4) + horizontal flip"),
    P_ENUM(T, "key_type", key_type, "random", "random|image|shuffle", NULL,
           "the owner's passports (ignored for baseline): random U(-1,1), or image/shuffle features of the "
           "data through a randomly initialised reference network (docs/passports.md \"Protocols\", 2)"),
    P_PROTOCOL(T, model.protocol),
    P_NAME_INT("seed", 1, 0, 2147483647, "model seed: sweep it for independent models"),
};
_Static_assert(IP_MAX_INT_LIST <= IP_MAX_MILESTONES, "a milestones list must fit in ip_optim_cfg");
_Static_assert(IP_KEY_RANDOM == 0 && IP_KEY_IMAGE == 1 && IP_KEY_SHUFFLE == 2, "key_type's choices are in ip_key_type order");

float ip_train_task_weight_decay(const ip_train_task *t) {
    if (t->train.opt.weight_decay != TRAIN_WD_AUTO) return t->train.opt.weight_decay;
    return (float)(t->model.protocol == IP_PROTOCOL_DEEPIPR_CODE ? TRAIN_WD_DEEPIPR_CODE : IP_WEIGHT_DECAY_PAPER);
}

static void train_init(void *p) {
    T *t = p;
    ip_train_defaults(&t->train); /* the optimiser's constants no key sets (betas, eps, lr decay) */
}

/* The signature must fit in the narrowest passport layer (8 bits per
 * character): the model is built on the data's input shape (unknown: not
 * checked here; training checks it). */
static int train_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    const T *t = p;
    if (t->train.opt.weight_decay < 0 && t->train.opt.weight_decay != TRAIN_WD_AUTO) {
        *key = "weight_decay";
        snprintf(msg, cap, "weight_decay %g: a decay is 0..1, or " IP_XSTR(TRAIN_WD_AUTO) " for the protocol's",
                 (double)t->train.opt.weight_decay);
        return -1;
    }
    if (t->model.scheme == IP_SCHEME_BASELINE || !shape) return 0;
    ip_model_cfg cfg = t->model;
    cfg.in_c = shape->c, cfg.in_h = shape->h, cfg.in_w = shape->w, cfg.classes = shape->classes;
    ip_model m;
    ip_err err = {{0}};
    if (ip_model_build(&m, &cfg, &err) != 0) {
        *key = "passport_layers|arch";
        snprintf(msg, cap, "cannot build %s (scheme %s): %s", t->model.arch, ip_scheme_name(t->model.scheme), err.msg);
        return -1;
    }
    int mincout = -1;
    char layer[IP_NAME_LEN] = "";
    for (int i = 0; i < m.npassports; i++)
        if (mincout < 0 || m.passports[i].cout < mincout) {
            mincout = m.passports[i].cout;
            snprintf(layer, sizeof layer, "%s", m.passports[i].layer);
        }
    ip_model_free(&m);
    size_t L = strlen(t->signature);
    if (L == 0 || 8 * L <= (size_t)mincout) return 0;
    *key = "signature";
    snprintf(msg, cap,
             "signature \"%s\" needs %zu bits (8 per character) but passport layer %s of %s has %d channels (at most %d "
             "characters)",
             t->signature, 8 * L, layer, t->model.arch, mincout, mincout / 8);
    return -1;
}

static int train_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_train(t, out, e); }

const ip_task_def ip_train_def = {
    .name = "train",
    .doc = "train one model (an entry of the `models` section)",
    IP_ROWS(train_params),
    .size = sizeof(T),
    .init = train_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .at_seed = {IP_AT(T, seed), IP_AT(T, train.seed)},
    .at_resume = IP_AT(T, resume),
    .check = train_check,
    .run = train_run,
};
#undef T

/* ---------------- eval ---------------- */

#define T ip_eval_task
static const ip_param eval_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to evaluate (a models entry or a task producing a model)"),
    P_ENUM(T, "branch", branch, "private", "private|public", NULL, "passport branch used for v2/v3 models"),
    P_INT(T, "batch", IP_F_INT, batch, 256, 1, 65536, P_EVAL_BATCH_DOC),
};
_Static_assert(IP_BRANCH_PRIVATE == 0 && IP_BRANCH_PUBLIC == 1, "eval's branch choices are in ip_branch order");

static int eval_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_eval(t, out, e); }

const ip_task_def ip_eval_def = {
    .name = "eval",
    .doc = "evaluate a model on the test split",
    IP_ROWS(eval_params),
    .size = sizeof(T),
    .at_data = IP_AT(T, data),
    .at_test_limit = IP_AT(T, test_limit),
    .run = eval_run,
};
#undef T

/* ---------------- prune ---------------- */

#define T ip_prune_task
static const ip_param prune_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to prune"),
    P_FLOAT(T, "rate", IP_F_DOUBLE, rate, 0.5, 0, 1, "fraction of conv/linear weights zeroed (global magnitude); deepipr-code: the percentile (/100) of "
            "all parameters' magnitudes at or below which they are zeroed"),
    P_PROTOCOL(T, protocol),
};

static int prune_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_prune(t, out, e); }

const ip_task_def ip_prune_def = {
    .name = "prune",
    .doc = "global magnitude pruning without retraining, then evaluation",
    IP_ROWS(prune_params),
    .size = sizeof(T),
    .at_data = IP_AT(T, data),
    .at_test_limit = IP_AT(T, test_limit),
    .at_out = IP_AT(T, out),
    .run = prune_run,
};
#undef T

/* ---------------- task code ---------------- */

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


/* The owner's passports of key type image/shuffle (docs/passports.md
 * "Protocols", 2). The reference is what the authors' code uses for CIFAR: a
 * baseline network of the same architecture, norm and protocol, randomly
 * initialised (their "pretrained" weights load only for 1000 classes), from
 * its own stream of the task's seed. Under deepipr-code it runs in train mode
 * on test images (their passport_data is the validation set), under paper in
 * eval mode on training images. Data are normalised for m (and so for ref). */
static int owner_keys(ip_model *m, const ip_train_task *t, const ip_dataset *train, const ip_dataset *test,
                      ip_err *e) {
    int code = m->cfg.protocol == IP_PROTOCOL_DEEPIPR_CODE;
    ip_model_cfg rcfg = m->cfg;
    rcfg.scheme = IP_SCHEME_BASELINE;
    snprintf(rcfg.passport_layers, sizeof rcfg.passport_layers, "none");
    ip_model ref = {0};
    ip_keygen g = {0};
    float *keys = NULL;
    int rc = -1;
    uint64_t seed = t->seed ^ ip_stream("owner-passport", 0);
    if (ip_model_build(&ref, &rcfg, e) != 0 || ip_model_init(&ref, seed, NULL, e) != 0) goto done;
    if (ip_keygen_init(&g, (ip_key_type)t->key_type, m, &ref, code ? test : train, seed, e) != 0) goto done;
    g.ref_training = code;
    keys = malloc(ip_keys_floats(m) * sizeof *keys);
    if (!keys) {
        ip_fail(e, "out of memory for the passports");
        goto done;
    }
    if (ip_keygen_generate(&g, 0, keys, e) != 0) goto done;
    ip_keys_to_model(m, keys);
    rc = 0;
done:
    if (rc != 0) ip_failctx(e, "key_type %s", ip_key_type_name((ip_key_type)t->key_type));
    free(keys);
    ip_keygen_free(&g);
    ip_model_free(&ref);
    return rc;
}

int ip_task_train(const ip_train_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset train = {0}, test = {0};
    ip_model m = {0};
    ip_saver sv = {0};
    int rc = -1;
    if (ip_cache_data_load(&train, t->data, IP_SPLIT_TRAIN, t->train_limit, e) != 0) goto done;
    if (ip_cache_data_load(&test, t->data, IP_SPLIT_TEST, t->test_limit, e) != 0) goto done;
    if (ip_data_check_splits(&train, &test, t->data, e) != 0) goto done;
    ip_model_cfg cfg = t->model;
    cfg.in_c = train.c, cfg.in_h = train.h, cfg.in_w = train.w, cfg.classes = train.classes;
    /* the model remembers the training set's statistics: eval and attacks normalise with them */
    ip_data_channel_stats(&train, cfg.in_mean, cfg.in_std);
    if (ip_model_build(&m, &cfg, e) != 0) goto done;
    if (ip_model_init(&m, t->seed, t->signature, e) != 0) goto done;
    if (cfg.scheme == IP_SCHEME_V3 && ip_trigger_attach(&m, t->triggers, t->seed, e) != 0) goto done;
    if (ip_data_match_model(&train, &m, e) != 0 || ip_data_match_model(&test, &m, e) != 0) goto done;
    if (m.npassports > 0 && t->key_type != IP_KEY_RANDOM && owner_keys(&m, t, &train, &test, e) != 0) goto done;
    ip_train_cfg tc = t->train;
    tc.opt.weight_decay = ip_train_task_weight_decay(t);
    if (tc.seed == 0) tc.seed = t->seed;
    epoch_sink sink = {out, e, 0};
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_train_def, t), e) < 0) goto done;
    if (ip_train_resumable(&m, &train, &test, &tc, record_epoch, &sink, &sv, out, e) != 0 || sink.failed) goto done;
    double acc;
    if (ip_evaluate(&m, &test, tc.batch, &acc, e) != 0) goto done;
    if (ip_metrics_set(out, "test_acc", acc, e) != 0) goto done;
    const ip_metric_array *loss = NULL;
    for (int i = 0; i < out->narrays; i++)
        if (strcmp(out->arrays[i].name, "epoch_train_loss") == 0) loss = &out->arrays[i];
    if (loss && loss->n && ip_metrics_set(out, "train_loss", loss->v[loss->n - 1], e) != 0) goto done;
    if (ip_metrics_set(out, "params", (double)m.nparams, e) != 0) goto done;
    /* the decay used: the weight_decay parameter reads -1 when the protocol chose it */
    if (ip_metrics_set(out, "weight_decay_used", tc.opt.weight_decay, e) != 0) goto done;
    if (passport_metrics(&m, &test, tc.batch, out, e) != 0) goto done;
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


int ip_task_eval(const ip_eval_task *t, ip_metrics *out, ip_err *e) {
    ip_dataset test = {0};
    ip_model m = {0};
    int32_t *pred = NULL;
    int rc = -1;
    if (ip_task_open(&m, &test, t->model_path, t->data, t->test_limit, e) != 0) goto done;
    if (t->branch >= 0) m.branch = (ip_branch)t->branch;
    if (test.n == 0) { /* ip_data_load never returns an empty split; no 0/0 accuracy either way */
        ip_fail_input(e, "the test split of %s is empty", t->data);
        goto done;
    }
    double acc;
    if (t->predictions[0]) { /* every label is wanted: predict, and count as ip_evaluate does */
        pred = malloc(test.n * sizeof *pred);
        if (!pred) {
            ip_fail(e, "out of memory");
            goto done;
        }
        if (ip_predict(&m, &test, t->batch, pred, e) != 0) goto done;
        acc = ip_accuracy(pred, &test);
    } else if (ip_evaluate(&m, &test, t->batch, &acc, e) != 0) { /* answered by a record when there is one */
        goto done;
    }
    if (ip_metrics_set(out, "test_acc", acc, e) != 0) goto done;
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
    int authors = t->protocol == IP_PROTOCOL_DEEPIPR_CODE;
    double thr = 0;
    if ((authors ? ip_prune_percentile(&m, t->rate, &pruned, &thr, e) : ip_prune_global(&m, t->rate, &pruned, e)) != 0)
        goto done;
    /* the authors evaluate model(x): a v2/v3 model's default is its public branch */
    int two = m.npassports && (m.cfg.scheme == IP_SCHEME_V2 || m.cfg.scheme == IP_SCHEME_V3);
    if (authors && two) {
        double priv;
        if (ip_evaluate(&m, &test, 256, &priv, e) != 0 || ip_metrics_set(out, "private_test_acc", priv, e) != 0)
            goto done;
    }
    ip_branch keep = m.branch;
    if (authors && two) m.branch = IP_BRANCH_PUBLIC;
    int rce = ip_evaluate(&m, &test, 256, &acc, e);
    m.branch = keep;
    if (rce != 0) goto done;
    if (ip_metrics_set(out, "rate", t->rate, e) || ip_metrics_set(out, "pruned", (double)pruned, e) ||
        ip_metrics_set(out, "test_acc", acc, e) || (authors && ip_metrics_set(out, "threshold", thr, e)))
        goto done;
    if (passport_metrics(&m, &test, 256, out, e) != 0) goto done;
    if (t->out[0] && ip_ckpt_save(&m, t->out, e) != 0) goto done;
    rc = 0;
done:
    ip_model_free(&m);
    ip_data_free(&test);
    return rc;
}
