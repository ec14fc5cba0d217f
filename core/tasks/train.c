/* The kinds train, eval and prune: their parameter tables (param.h) and
 * checks. The task code itself: core/tasks.c. */
#include <stdio.h>
#include <string.h>

#include "../tasks.h"
#include "../trigger.h"
#include "param.h"

/* ---------------- train (a spec's `models` section) ---------------- */

#define T ip_train_task
static const ip_param train_params[] = {
    P_ENUM_STR(T, "arch", model.arch, "small-p", "small-p|small-p-narrow|small-p-wide|alexnet-p|resnet18-p",
               "architecture (docs/models.md)"),
    P_ENUM(T, "norm", model.norm, "bn", "bn|gn", NULL, "normalisation: batch norm or group norm (C/16 groups)"),
    P_ENUM(T, "scheme", model.scheme, "baseline", "baseline|v1|v2|v3", NULL, "passport scheme (REFERENCE.md section 1)"),
    P_STR(T, "passport_layers", model.passport_layers, "default",
          "default | none | comma list of conv blocks, e.g. \"block1,block2\""),
    P_STR(T, "signature", signature, "", "text embedded in every passport layer (8 bits per character)"),
    P_INT(T, "triggers", IP_F_SIZE, triggers, 100, 1, IP_TRIGGER_MAX_COUNT,
          "v3: trigger set size (noise images with random labels from the seed, docs/passports.md); ignored otherwise"),
    P_INT(T, "epochs", IP_F_INT, train.epochs, 2, 0, 100000, "training epochs"),
    P_INT(T, "batch", IP_F_INT, train.batch, 64, 1, 65536, "minibatch size"),
    P_ENUM(T, "optimizer", train.opt.kind, "sgd", "sgd|adam", NULL, "optimiser"),
    P_FLOAT(T, "lr", IP_F_FLOAT, train.opt.lr, 0.01, 1e-9, 10, "learning rate"),
    P_FLOAT(T, "momentum", IP_F_FLOAT, train.opt.momentum, 0.9, 0, 1, "SGD momentum"),
    P_FLOAT(T, "weight_decay", IP_F_FLOAT, train.opt.weight_decay, 5e-4, 0, 1, "L2 weight decay"),
    {"milestones", IP_P_INTLIST, IP_F_MILESTONES, IP_FIELD_(T, train.opt), "", 0, 1, 100000, NULL, NULL,
     "epochs where lr is multiplied by 0.1, increasing, e.g. \"100,150\""},
    P_BOOL(T, "augment", train.augment, false, "random crop (pad 4) + horizontal flip"),
    P_NAME_INT("seed", 1, 0, 2147483647, "model seed: sweep it for independent models"),
};
_Static_assert(IP_MAX_INT_LIST <= IP_MAX_MILESTONES, "a milestones list must fit in ip_optim_cfg");

static void train_init(void *p) {
    T *t = p;
    ip_train_defaults(&t->train); /* the optimiser's constants no key sets (betas, eps, lr decay) */
}

/* The signature must fit in the narrowest passport layer (8 bits per
 * character). Needs the input shape in t->model (the spec loader sets it
 * from the data; 0 = unknown: not checked). */
static int train_check(const void *p, const char **key, char *msg, size_t cap) {
    const T *t = p;
    if (t->model.scheme == IP_SCHEME_BASELINE || t->model.in_c == 0) return 0;
    ip_model m;
    ip_err err = {{0}};
    if (ip_model_build(&m, &t->model, &err) != 0) {
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
    "train", "train one model (an entry of the `models` section)", train_params,
    (int)(sizeof train_params / sizeof *train_params), sizeof(T), train_init, offsetof(T, data),
    offsetof(T, train_limit), offsetof(T, test_limit), offsetof(T, out), {offsetof(T, seed), offsetof(T, train.seed)},
    train_check, train_run};
#undef T

/* ---------------- eval ---------------- */

#define T ip_eval_task
static const ip_param eval_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to evaluate (a models entry or a task producing a model)"),
    P_ENUM(T, "branch", branch, "private", "private|public", NULL, "passport branch used for v2/v3 models"),
    P_INT(T, "batch", IP_F_INT, batch, 256, 1, 65536, "evaluation batch"),
};
_Static_assert(IP_BRANCH_PRIVATE == 0 && IP_BRANCH_PUBLIC == 1, "eval's branch choices are in ip_branch order");

static int eval_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_eval(t, out, e); }

const ip_task_def ip_eval_def = {"eval", "evaluate a model on the test split", eval_params,
                                 (int)(sizeof eval_params / sizeof *eval_params), sizeof(T), NULL, offsetof(T, data),
                                 IP_NO_FIELD, offsetof(T, test_limit), IP_NO_FIELD, {IP_NO_FIELD, IP_NO_FIELD}, NULL,
                                 eval_run};
#undef T

/* ---------------- prune ---------------- */

#define T ip_prune_task
static const ip_param prune_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to prune"),
    P_FLOAT(T, "rate", IP_F_DOUBLE, rate, 0.5, 0, 1, "fraction of conv/linear weights zeroed (global magnitude)"),
};

static int prune_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_prune(t, out, e); }

const ip_task_def ip_prune_def = {"prune", "global magnitude pruning without retraining, then evaluation",
                                  prune_params, (int)(sizeof prune_params / sizeof *prune_params), sizeof(T), NULL,
                                  offsetof(T, data), IP_NO_FIELD, offsetof(T, test_limit), offsetof(T, out),
                                  {IP_NO_FIELD, IP_NO_FIELD}, NULL, prune_run};
#undef T
