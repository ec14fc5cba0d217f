/* The task kinds (see kinds.h): their keys, cost estimates and the glue from
 * a task's text parameters to the core's task structs. */
#include "kinds.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/tasks.h"

/* ---------------- parameter helpers (kinds.h) ---------------- */

const char *rn_param_str(const rn_task *t, const char *name) {
    const char *v = rn_task_get(t, name);
    return v ? v : "";
}
double rn_param_f(const rn_task *t, const char *name) { return atof(rn_param_str(t, name)); }
long rn_param_i(const rn_task *t, const char *name) { return atol(rn_param_str(t, name)); }
int rn_param_b(const rn_task *t, const char *name) { return strcmp(rn_param_str(t, name), "true") == 0; }

int rn_copy_str(char *dst, size_t cap, const char *src, const char *what, ip_err *e) {
    if (strlen(src) >= cap) return ip_fail(e, "%s is longer than %zu characters", what, cap - 1);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

int rn_int_list_parse(const rn_key *k, const char *s, long *out, char *msg, size_t cap) {
    int n = 0;
    const char *p = s;
    if (!*p) return 0; /* none */
    for (;;) {
        while (*p == ' ') p++;
        const char *start = p;
        while (*p >= '0' && *p <= '9') p++;
        const char *end = p;
        while (*p == ' ') p++;
        if (end == start) {
            size_t l = strcspn(start, ",");
            if (l == 0 || (size_t)(p - start) == l)
                snprintf(msg, cap, "empty item in \"%s\" (expected integers separated by commas, e.g. \"100,150\")", s);
            else snprintf(msg, cap, "\"%.*s\" is not a positive integer (expected e.g. \"100,150\")", (int)l, start);
            return -1;
        }
        if (*p && *p != ',') {
            snprintf(msg, cap, "\"%.*s\" is not a positive integer (expected e.g. \"100,150\")", (int)strcspn(start, ","),
                     start);
            return -1;
        }
        /* at most 15 digits: no overflow, and compared with max exactly */
        size_t digits = (size_t)(end - start);
        double v = digits > 15 ? INFINITY : strtod(start, NULL);
        if (v < k->min || v > k->max) {
            snprintf(msg, cap, "%.*s is out of range [%.10g, %.10g]", (int)digits, start, k->min, k->max);
            return -1;
        }
        if (n > 0 && (long)v <= out[n - 1]) {
            snprintf(msg, cap, "%ld does not come after %ld (the list must increase)", (long)v, out[n - 1]);
            return -1;
        }
        if (n >= RN_MAX_INT_LIST) {
            snprintf(msg, cap, "more than %d items", RN_MAX_INT_LIST);
            return -1;
        }
        out[n++] = (long)v;
        if (!*p) return n;
        p++; /* the comma */
        if (!*p) {
            snprintf(msg, cap, "\"%s\" ends with a comma", s);
            return -1;
        }
    }
}

int rn_shard_path(char *out, size_t cap, const char *merged_path, int shard, int shards) {
    size_t l = strlen(merged_path);
    if (l >= 3 && strcmp(merged_path + l - 3, ".h5") == 0) l -= 3;
    int n = snprintf(out, cap, "%.*s.shard-%d-of-%d.h5", (int)l, merged_path, shard, shards);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Forward FLOPs per image of an architecture on the spec's data shape, for
 * cost estimates only (rough: scaled from small-p's 14.9 MFLOP on 28x28). */
static double arch_mflop(const char *arch) {
    if (strcmp(arch, "alexnet-p") == 0) return 440.0;
    if (strcmp(arch, "resnet18-p") == 0) return 556.0;
    if (strcmp(arch, "small-p-wide") == 0) return 58.0;
    if (strcmp(arch, "small-p-narrow") == 0) return 3.9;
    return 14.9;
}
/* Images per second per core the core sustains, by forward MFLOP: measured
 * ~60 GFLOP/s training-equivalent per core (docs/performance.md). */
static double seconds_for(double images, double mflop, double passes) {
    return images * mflop * 1e6 * passes / 60e9;
}
static double data_images(const rn_ctx *c, int train) {
    size_t lim = train ? c->train_limit : c->test_limit;
    return lim ? (double)lim : (train ? 50000.0 : 10000.0);
}

/* ---------------- train (the `models` section) ---------------- */

static const rn_key train_keys[] = {
    {"arch", RN_T_ENUM, "small-p", 0, 0, "small-p|small-p-narrow|small-p-wide|alexnet-p|resnet18-p",
     "architecture (docs/models.md)"},
    {"norm", RN_T_ENUM, "bn", 0, 0, "bn|gn", "normalisation: batch norm or group norm (C/16 groups)"},
    {"scheme", RN_T_ENUM, "baseline", 0, 0, "baseline|v1|v2|v3", "passport scheme (REFERENCE.md section 1)"},
    {"passport_layers", RN_T_STRING, "default", 0, 0, NULL,
     "default | none | comma list of conv blocks, e.g. \"block1,block2\""},
    {"signature", RN_T_STRING, "", 0, 0, NULL, "text embedded in every passport layer (8 bits per character)"},
    {"triggers", RN_T_INT, "100", 1, 100000, NULL,
     "v3: trigger set size (noise images with random labels from the seed, docs/passports.md); ignored otherwise"},
    {"epochs", RN_T_INT, "2", 0, 100000, NULL, "training epochs"},
    {"batch", RN_T_INT, "64", 1, 65536, NULL, "minibatch size"},
    {"optimizer", RN_T_ENUM, "sgd", 0, 0, "sgd|adam", "optimiser"},
    {"lr", RN_T_FLOAT, "0.01", 1e-9, 10, NULL, "learning rate"},
    {"momentum", RN_T_FLOAT, "0.9", 0, 1, NULL, "SGD momentum"},
    {"weight_decay", RN_T_FLOAT, "5e-4", 0, 1, NULL, "L2 weight decay"},
    {"milestones", RN_T_INTLIST, "", 1, 100000, NULL, "epochs where lr is multiplied by 0.1, increasing, e.g. \"100,150\""},
    {"augment", RN_T_BOOL, "false", 0, 0, NULL, "random crop (pad 4) + horizontal flip"},
    {"seed", RN_T_INT, "1", 0, 2147483647, NULL, "model seed: sweep it for independent models"},
};

static double train_cost(const rn_task *t, const rn_ctx *c) {
    const char *sch = rn_param_str(t, "scheme");
    double passes = 3.0 * (strcmp(sch, "v2") == 0 || strcmp(sch, "v3") == 0 ? 2 : 1);
    return seconds_for(data_images(c, 1) * (double)rn_param_i(t, "epochs"), arch_mflop(rn_param_str(t, "arch")), passes) +
           seconds_for(data_images(c, 0) * (double)(rn_param_i(t, "epochs") + 1), arch_mflop(rn_param_str(t, "arch")), 1);
}

_Static_assert(RN_MAX_INT_LIST <= IP_MAX_MILESTONES, "a milestones list must fit in ip_optim_cfg");

int rn_milestones_parse(const char *s, ip_optim_cfg *o, ip_err *e) {
    long v[RN_MAX_INT_LIST];
    char msg[200];
    const rn_key *k = NULL;
    for (int i = 0; i < RN_NKEYS(train_keys); i++)
        if (strcmp(train_keys[i].name, "milestones") == 0) k = &train_keys[i];
    int n = rn_int_list_parse(k, s, v, msg, sizeof msg);
    if (n < 0) return ip_fail(e, "milestones: %s", msg);
    o->nmilestones = n;
    for (int i = 0; i < n; i++) o->milestones[i] = (int)v[i];
    return 0;
}

static int train_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_train_task tt;
    ip_train_task_defaults(&tt);
    if (rn_copy_str(tt.model.arch, sizeof tt.model.arch, rn_param_str(t, "arch"), "arch", e) ||
        rn_copy_str(tt.model.passport_layers, sizeof tt.model.passport_layers, rn_param_str(t, "passport_layers"),
                 "passport_layers", e) ||
        rn_copy_str(tt.signature, sizeof tt.signature, rn_param_str(t, "signature"), "signature", e) ||
        rn_copy_str(tt.data, sizeof tt.data, c->data_source, "data.source", e) ||
        rn_copy_str(tt.out, sizeof tt.out, t->checkpoint, "checkpoint path", e))
        return -1;
    if (ip_norm_parse(rn_param_str(t, "norm"), &tt.model.norm) || ip_scheme_parse(rn_param_str(t, "scheme"), &tt.model.scheme))
        return ip_fail(e, "bad norm or scheme");
    tt.train_limit = c->train_limit;
    tt.test_limit = c->test_limit;
    ip_optim_defaults(&tt.train.opt, strcmp(rn_param_str(t, "optimizer"), "adam") == 0 ? IP_OPT_ADAM : IP_OPT_SGD);
    tt.train.opt.lr = (float)rn_param_f(t, "lr");
    tt.train.opt.momentum = (float)rn_param_f(t, "momentum");
    tt.train.opt.weight_decay = (float)rn_param_f(t, "weight_decay");
    if (rn_milestones_parse(rn_param_str(t, "milestones"), &tt.train.opt, e)) return -1;
    tt.train.epochs = (int)rn_param_i(t, "epochs");
    tt.train.batch = (int)rn_param_i(t, "batch");
    tt.train.augment = rn_param_b(t, "augment");
    tt.triggers = (size_t)rn_param_i(t, "triggers");
    tt.seed = t->seed;
    tt.train.seed = t->seed;
    return ip_task_train(&tt, out, e);
}

/* ---------------- eval ---------------- */

static const rn_key eval_keys[] = {
    {"model", RN_T_MODEL, NULL, 0, 0, NULL, "the model to evaluate (a models entry or a task producing a model)"},
    {"branch", RN_T_ENUM, "private", 0, 0, "private|public", "passport branch used for v2/v3 models"},
    {"batch", RN_T_INT, "256", 1, 65536, NULL, "evaluation batch"},
};

static double eval_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    return seconds_for(data_images(c, 0), 15, 1) + 0.05;
}

static int eval_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_eval_task et;
    ip_eval_task_defaults(&et);
    if (rn_copy_str(et.model_path, sizeof et.model_path, rn_param_str(t, "model_path"), "model path", e) ||
        rn_copy_str(et.data, sizeof et.data, c->data_source, "data.source", e))
        return -1;
    et.test_limit = c->test_limit;
    et.batch = (int)rn_param_i(t, "batch");
    et.branch = strcmp(rn_param_str(t, "branch"), "public") == 0 ? IP_BRANCH_PUBLIC : IP_BRANCH_PRIVATE;
    return ip_task_eval(&et, out, e);
}

/* ---------------- prune ---------------- */

static const rn_key prune_keys[] = {
    {"model", RN_T_MODEL, NULL, 0, 0, NULL, "the model to prune"},
    {"rate", RN_T_FLOAT, "0.5", 0, 1, NULL, "fraction of conv/linear weights zeroed (global magnitude)"},
};

static double prune_cost(const rn_task *t, const rn_ctx *c) { return eval_cost(t, c) + 0.05; }

static int prune_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_prune_task pt = {0};
    if (rn_copy_str(pt.model_path, sizeof pt.model_path, rn_param_str(t, "model_path"), "model path", e) ||
        rn_copy_str(pt.data, sizeof pt.data, c->data_source, "data.source", e) ||
        rn_copy_str(pt.out, sizeof pt.out, t->checkpoint, "checkpoint path", e))
        return -1;
    pt.test_limit = c->test_limit;
    pt.rate = rn_param_f(t, "rate");
    return ip_task_prune(&pt, out, e);
}

/* ---------------- noop (bench dispatch, tests) ---------------- */

static const rn_key noop_keys[] = {
    {"value", RN_T_FLOAT, "0", -1e300, 1e300, NULL, "echoed back as the metric `value`"},
    {"fail", RN_T_BOOL, "false", 0, 0, NULL, "fail on purpose (tests of failure handling)"},
    {"crash", RN_T_BOOL, "false", 0, 0, NULL,
     "kill the process running it with SIGKILL, like the OOM killer (tests of the crash-twice rule)"},
};

static double noop_cost(const rn_task *t, const rn_ctx *c) {
    (void)t, (void)c;
    return 1e-6;
}

static int noop_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    (void)c;
    if (rn_param_b(t, "fail")) return ip_fail(e, "failed on purpose (fail: true)");
    if (rn_param_b(t, "crash")) { /* after a moment, like a task that runs out of memory */
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        raise(SIGKILL);
    }
    return ip_metrics_set(out, "value", rn_param_f(t, "value"), e);
}

static const rn_kind kind_train = {"train", "train one model (an entry of the `models` section)", train_keys,
                                   RN_NKEYS(train_keys), RN_OUT_MODEL, train_cost, train_run, NULL, NULL};
static const rn_kind kind_eval = {"eval", "evaluate a model on the test split", eval_keys, RN_NKEYS(eval_keys), RN_OUT_NONE,
                                  eval_cost, eval_run, NULL, NULL};
static const rn_kind kind_prune = {"prune", "global magnitude pruning without retraining, then evaluation",
                                   prune_keys, RN_NKEYS(prune_keys), RN_OUT_MODEL, prune_cost, prune_run, NULL, NULL};
static const rn_kind kind_noop = {"noop", "does nothing (scheduler benchmarks and tests)", noop_keys,
                                  RN_NKEYS(noop_keys), RN_OUT_NONE, noop_cost, noop_run, NULL, NULL};

/* passport attacks (runner/kind_attacks.c, runner/kind_forge.c) */
extern const rn_kind rn_kind_finetune, rn_kind_flip, rn_kind_fake2, rn_kind_fake3;
extern const rn_kind rn_kind_fake1, rn_kind_verify;
/* IPGuard (runner/kind_ipguard.c) */
extern const rn_kind rn_kind_fingerprint, rn_kind_match;

const rn_kind *const rn_kinds[] = {&kind_train,    &kind_eval,     &kind_prune,     &rn_kind_fake1,
                                   &rn_kind_verify, &rn_kind_fake2, &rn_kind_fake3, &rn_kind_finetune,
                                   &rn_kind_flip,  &rn_kind_fingerprint, &rn_kind_match, &kind_noop, NULL};

const rn_kind *rn_kind_find(const char *name) {
    for (int i = 0; rn_kinds[i]; i++)
        if (strcmp(rn_kinds[i]->name, name) == 0) return rn_kinds[i];
    return NULL;
}

const rn_key *rn_kind_key(const rn_kind *k, const char *name) {
    for (int i = 0; i < k->nkeys; i++)
        if (strcmp(k->keys[i].name, name) == 0) return &k->keys[i];
    return NULL;
}
