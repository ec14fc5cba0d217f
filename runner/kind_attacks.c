/* Task kinds of the attacks (core/attacks.h, docs/attacks.md): finetune,
 * flip, fake2, fake3. Keys, cost estimates and the glue from a task's text
 * parameters to the core's task structs, like runner/kinds.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/attacks.h"
#include "kinds.h"

/* model path + data source, common to every attack */
static int common(const rn_task *t, const rn_ctx *c, char *model_path, char *data, ip_err *e) {
    return rn_copy_str(model_path, 1024, rn_param_str(t, "model_path"), "model path", e) ||
           rn_copy_str(data, 1024, c->data_source, "data.source", e);
}

/* Cost estimates: the referenced model's architecture is unknown here, so
 * they assume small-p (14.9 MFLOP per 28x28 image) at ~60 GFLOP/s per core,
 * like runner/kinds.c. Training passes cost 3 forwards. */
static double images(const rn_ctx *c, int train) {
    size_t lim = train ? c->train_limit : c->test_limit;
    return lim ? (double)lim : (train ? 50000.0 : 10000.0);
}
static double secs(double imgs, double passes) { return imgs * 14.9e6 * passes / 60e9; }
static double fraction_of(const rn_task *t, const char *key) {
    double f = rn_param_f(t, key);
    return f > 0 ? f : 1;
}

#define MODEL_KEY(doc) {"model", RN_T_MODEL, NULL, 0, 0, NULL, doc}
#define SEED_KEY                                                                                                   \
    {"seed", RN_T_INT, "1", 0, 2147483647, NULL,                                                                   \
     "repetition: sweep it to repeat the attack with other random draws (the RNG seed derives from the task key)"}

/* ---------------- finetune ---------------- */

static const rn_key finetune_keys[] = {
    MODEL_KEY("the model to fine-tune"),
    {"mode", RN_T_ENUM, "rtal", 0, 0, "ftll|ftal|rtll|rtal",
     "fine-tune last layer / all layers; re-initialise the last layer and train it / train all"},
    {"fraction", RN_T_FLOAT, "1", 1e-9, 1, NULL,
     "attacker's training samples as a fraction of the owner's training set size (data.train_limit)"},
    {"disjoint", RN_T_BOOL, "false", 0, 0, NULL,
     "use the training samples after the owner's data.train_limit (data the owner never saw)"},
    {"epochs", RN_T_INT, "2", 0, 100000, NULL, "fine-tuning epochs"},
    {"lr", RN_T_FLOAT, "0.01", 1e-9, 10, NULL, "SGD learning rate (momentum 0.9, weight decay 5e-4)"},
    {"batch", RN_T_INT, "64", 1, 65536, NULL, "minibatch size (also the evaluation batch)"},
    SEED_KEY,
};

static double finetune_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_param_i(t, "epochs");
    return secs(images(c, 1) * fraction_of(t, "fraction") * ep, 3) + secs(images(c, 0) * (2 * ep + 1), 1) + 0.05;
}

static int finetune_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_finetune_task ft;
    ip_finetune_task_defaults(&ft);
    if (common(t, c, ft.model_path, ft.data, e) || rn_copy_str(ft.out, sizeof ft.out, t->checkpoint, "checkpoint path", e))
        return -1;
    if (ip_ft_mode_parse(rn_param_str(t, "mode"), &ft.mode) != 0) return ip_fail(e, "bad mode \"%s\"", rn_param_str(t, "mode"));
    ft.train_limit = c->train_limit;
    ft.test_limit = c->test_limit;
    ft.fraction = rn_param_f(t, "fraction");
    ft.disjoint = rn_param_b(t, "disjoint");
    ft.epochs = (int)rn_param_i(t, "epochs");
    ft.batch = (int)rn_param_i(t, "batch");
    ft.opt.lr = (float)rn_param_f(t, "lr");
    ft.seed = t->seed;
    return ip_task_finetune(&ft, out, e);
}

/* ---------------- flip ---------------- */

static const rn_key flip_keys[] = {
    MODEL_KEY("the model whose gamma signs are flipped"),
    {"fraction", RN_T_FLOAT, "0.5", 0, 1, NULL, "fraction of the channels of every passport layer flipped"},
    {"batch", RN_T_INT, "256", 1, 65536, NULL, "evaluation batch"},
    SEED_KEY,
};

static double flip_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    return secs(images(c, 0), 1) + 0.05;
}

static int flip_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_flip_task ft;
    ip_flip_task_defaults(&ft);
    if (common(t, c, ft.model_path, ft.data, e)) return -1;
    ft.test_limit = c->test_limit;
    ft.fraction = rn_param_f(t, "fraction");
    ft.batch = (int)rn_param_i(t, "batch");
    ft.seed = t->seed;
    return ip_task_flip(&ft, out, e);
}

/* ---------------- fake2 ---------------- */

static const rn_key fake2_keys[] = {
    MODEL_KEY("the passport model to forge a passport for"),
    {"target", RN_T_ENUM, "affine", 0, 0, "affine|passport",
     "learn gamma/beta of the passport layers directly, or the passport tensors"},
    {"fraction", RN_T_FLOAT, "1", 1e-9, 1, NULL, "fraction of the owner's training data the attacker has"},
    {"init_flip", RN_T_FLOAT, "0.5", 0, 1, NULL,
     "affine: fraction of the true gamma signs flipped in the initial gamma (= sign x 0.5)"},
    {"epochs", RN_T_INT, "2", 0, 100000, NULL, "training epochs"},
    {"lr", RN_T_FLOAT, "0.01", 1e-9, 10, NULL, "SGD learning rate (momentum 0.9, weight decay 5e-4)"},
    {"batch", RN_T_INT, "64", 1, 65536, NULL, "minibatch size (also the evaluation batch)"},
    SEED_KEY,
};

static double fake2_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_param_i(t, "epochs");
    return secs(images(c, 1) * fraction_of(t, "fraction") * ep, 3) + secs(images(c, 0) * (ep + 2), 1) + 0.05;
}

static int fake2_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_fake2_task ft;
    ip_fake2_task_defaults(&ft);
    if (common(t, c, ft.model_path, ft.data, e)) return -1;
    ft.target = strcmp(rn_param_str(t, "target"), "passport") == 0 ? IP_FAKE2_PASSPORT : IP_FAKE2_AFFINE;
    ft.train_limit = c->train_limit;
    ft.test_limit = c->test_limit;
    ft.fraction = rn_param_f(t, "fraction");
    ft.init_flip = rn_param_f(t, "init_flip");
    ft.epochs = (int)rn_param_i(t, "epochs");
    ft.batch = (int)rn_param_i(t, "batch");
    ft.opt.lr = (float)rn_param_f(t, "lr");
    ft.seed = t->seed;
    return ip_task_fake2(&ft, out, e);
}

/* ---------------- fake3 ---------------- */

static const rn_key fake3_keys[] = {
    MODEL_KEY("the passport model (the insider has its weights, data, passports and signature)"),
    {"flip_fraction", RN_T_FLOAT, "0", 0, 1, NULL,
     "fraction of the owner's signature bits (per layer) flipped to form the target signature"},
    {"fraction", RN_T_FLOAT, "1", 1e-9, 1, NULL, "fraction of the owner's training data used"},
    {"push_weight", RN_T_FLOAT, "1", 0, 1e9, NULL, "weight of the push-away term sum 1/MSE(fake, real passport)"},
    {"epochs", RN_T_INT, "2", 0, 100000, NULL, "training epochs"},
    {"lr", RN_T_FLOAT, "0.01", 1e-9, 10, NULL, "SGD learning rate (momentum 0.9, weight decay 5e-4)"},
    {"batch", RN_T_INT, "64", 1, 65536, NULL, "minibatch size (also the evaluation batch)"},
    SEED_KEY,
};

static double fake3_cost(const rn_task *t, const rn_ctx *c) { return fake2_cost(t, c); }

static int fake3_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_fake3_task ft;
    ip_fake3_task_defaults(&ft);
    if (common(t, c, ft.model_path, ft.data, e)) return -1;
    ft.train_limit = c->train_limit;
    ft.test_limit = c->test_limit;
    ft.flip_fraction = rn_param_f(t, "flip_fraction");
    ft.fraction = rn_param_f(t, "fraction");
    ft.push_weight = rn_param_f(t, "push_weight");
    ft.epochs = (int)rn_param_i(t, "epochs");
    ft.batch = (int)rn_param_i(t, "batch");
    ft.opt.lr = (float)rn_param_f(t, "lr");
    ft.seed = t->seed;
    return ip_task_fake3(&ft, out, e);
}

const rn_kind rn_kind_finetune = {"finetune",
                                  "fine-tuning attack / IPGuard suspect (FTLL, FTAL, RTLL, RTAL); docs/attacks.md",
                                  finetune_keys, RN_NKEYS(finetune_keys), RN_OUT_MODEL, finetune_cost, finetune_run, NULL, NULL};
const rn_kind rn_kind_flip = {"flip", "flip the signs of a fraction of the passport gammas, then evaluate",
                              flip_keys, RN_NKEYS(flip_keys), RN_OUT_NONE, flip_cost, flip_run, NULL, NULL};
const rn_kind rn_kind_fake2 = {"fake2", "ambiguity attack: forge gamma/beta or passports with the weights frozen",
                               fake2_keys, RN_NKEYS(fake2_keys), RN_OUT_NONE, fake2_cost, fake2_run, NULL, NULL};
const rn_kind rn_kind_fake3 = {"fake3", "insider ambiguity attack: push the real passports towards another signature",
                               fake3_keys, RN_NKEYS(fake3_keys), RN_OUT_NONE, fake3_cost, fake3_run, NULL, NULL};
