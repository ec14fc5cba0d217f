/* The kinds' shared cost model (cost.h). */
#include "cost.h"

#include <stdio.h>
#include <string.h>

#include "../../core/model/train.h"

/* Measured with `ipsweep bench train --arch A --threads 1 --scheme baseline`
 * (batch 64, medians of 3) on the 2-core development machine at load 1.2-1.4,
 * 2026-12-06 (docs/performance.md "Cost model"); re-measure when a kernel
 * changes. The first row is the default. */
static const rn_arch_speed arch_speed[] = {
    {"small-p", 14.9, 7.7, 9408, 2100, 7250},
    {"small-p-narrow", 3.9, 2.0, 4704, 5250, 17200},
    {"small-p-wide", 58.0, 29.8, 18816, 717, 2190},
    {"alexnet-p", 440.0, 365.3, 53248, 177, 521},
    {"resnet18-p", 1111.0, 1035.3, 40960, 44.5, 140},
};

enum { NROWS = sizeof arch_speed / sizeof *arch_speed };
_Static_assert(NROWS <= 31, "run --calibrate sends the rows it times as the bits of an int");

int rn_arch_rows(void) { return NROWS; }

const rn_arch_speed *rn_arch_row(int i) { return i >= 0 && i < NROWS ? &arch_speed[i] : &arch_speed[0]; }

int rn_arch_index(const char *arch) {
    for (int i = 0; arch && i < NROWS; i++)
        if (strcmp(arch, arch_speed[i].arch) == 0) return i;
    return 0;
}

const rn_arch_speed *rn_arch(const char *arch) { return &arch_speed[rn_arch_index(arch)]; }

double rn_arch_mflop(const char *arch) { return rn_arch(arch)->mflop; }

/* each row's speeds on this machine over the row's (rn_cost_set_measured_speed); 0: not measured */
static double measured_factor[NROWS][RN_SPEEDS];

static double factor(int row, int which) {
    double f = measured_factor[row][which];
    return f > 0 ? f : 1.0;
}

/* time per training image in minibatches of b over that in minibatches of
 * RN_ROW_BATCH, for a step's fixed part of k images */
static double batch_ratio(double k, double b) { return (b + k) / b / ((RN_ROW_BATCH + k) / RN_ROW_BATCH); }

double rn_row_speed(const rn_arch_speed *row, int which) {
    switch (which) {
    case RN_SPEED_TRAIN: return row->train_per_s;
    case RN_SPEED_INFER: return row->infer_per_s;
    case RN_SPEED_FORGE: return row->infer_per_s / RN_FORGE_IMAGE_COST;
    default: return row->train_per_s / batch_ratio(RN_STEP_IMAGES, RN_SMALL_BATCH);
    }
}

void rn_cost_set_measured_speed(const char *arch, const double speed[RN_SPEEDS], double out[RN_SPEEDS]) {
    int i = rn_arch_index(arch);
    for (int k = 0; k < RN_SPEEDS; k++) {
        measured_factor[i][k] = speed[k] > 0 ? speed[k] / rn_row_speed(&arch_speed[i], k) : 0;
        if (out) out[k] = factor(i, k);
    }
}

/* images at the row's speed of kind `which`, scaled by its factor */
static double row_seconds(const char *arch, double images, int which) {
    int i = rn_arch_index(arch);
    return images / (rn_row_speed(&arch_speed[i], which) * factor(i, which));
}

double rn_train_seconds(const char *arch, double images, double passes) {
    return row_seconds(arch, images * passes, RN_SPEED_TRAIN);
}

/* A step's fixed part k, in images, of a row: RN_STEP_IMAGES, or from the
 * ratio r of the time per image at RN_SMALL_BATCH (s) and RN_ROW_BATCH (B)
 * measured here: r = (s + k) / s * B / (B + k), so k = B s (r - 1) / (B - r s).
 * r >= B / s would be a step of nothing but its fixed part: capped below. */
static double step_images(int row) {
    if (!(measured_factor[row][RN_SPEED_TRAIN] > 0 && measured_factor[row][RN_SPEED_TRAIN_SMALL] > 0))
        return RN_STEP_IMAGES;
    const double B = RN_ROW_BATCH, s = RN_SMALL_BATCH;
    double r = batch_ratio(RN_STEP_IMAGES, s) * factor(row, RN_SPEED_TRAIN) / factor(row, RN_SPEED_TRAIN_SMALL);
    if (r <= 1) return 0; /* no slower per image in small minibatches */
    if (r > 0.99 * B / s) r = 0.99 * B / s;
    return B * s * (r - 1) / (B - r * s);
}

double rn_batch_factor(const char *arch, double batch) {
    return batch > 0 ? batch_ratio(step_images(rn_arch_index(arch)), batch) : 1;
}

double rn_task_batch_factor(const rn_task *t, const char *arch) {
    return rn_batch_factor(arch, (double)rn_val_i(t, "batch"));
}

double rn_infer_seconds(const char *arch, double images) { return row_seconds(arch, images, RN_SPEED_INFER); }

double rn_forge_seconds(const char *arch, double passport_images) {
    return row_seconds(arch, passport_images, RN_SPEED_FORGE);
}

const rn_task *rn_producer(const rn_task *t, const rn_ctx *c, const char *param) {
    if (!c || !c->tasks || !t) return NULL;
    char key[80];
    snprintf(key, sizeof key, "%s_path", param);
    const char *path = rn_task_get(t, key);
    for (int d = 0; path && *path && d < t->ndeps; d++) {
        const rn_task *p = &c->tasks[t->deps[d]];
        if (p->checkpoint && strcmp(p->checkpoint, path) == 0) return p;
    }
    return NULL;
}

/* The task that made the model t's key `param` names: the first on the chain
 * of derived models (prune, finetune, advtrain: the model they derive from)
 * with an `arch` key, a training or a student (distill, extract); NULL when
 * the chain leaves the spec (c->tasks unset, a checkpoint from outside). */
static const rn_task *model_maker(const rn_task *t, const rn_ctx *c, const char *param) {
    /* a chain of derived models is at most as long as the task list */
    for (int hops = 0; hops < 1000; hops++) {
        const rn_task *p = rn_producer(t, c, param);
        if (!p || rn_task_val(p, "arch")) return p;
        t = p;
        param = "model";
    }
    return NULL;
}

/* The text of `key` ("arch", "norm") on the maker of the model t's key
 * `param` names; a student without one of its own (an empty `arch`, no
 * `norm`) has its teacher's. "" when it cannot be known. */
static const char *maker_text(const rn_task *t, const rn_ctx *c, const char *param, const char *key) {
    const rn_task *m = model_maker(t, c, param);
    if (!m) return "";
    const char *v = rn_val_text(m, key);
    return v[0] ? v : maker_text(m, c, "model", key);
}

const char *rn_model_arch(const rn_task *t, const rn_ctx *c, const char *param) {
    const char *arch = maker_text(t, c, param, "arch");
    return arch[0] ? arch : arch_speed[0].arch;
}

const char *rn_model_scheme(const rn_task *t, const rn_ctx *c, const char *param) {
    const rn_task *m = model_maker(t, c, param);
    const char *scheme = m ? rn_val_text(m, "scheme") : "";
    return scheme[0] ? scheme : "baseline"; /* a student (no scheme key) is a baseline */
}

const char *rn_model_norm(const rn_task *t, const rn_ctx *c, const char *param) {
    return maker_text(t, c, param, "norm");
}

int rn_task_group_norm(const rn_task *t, const rn_ctx *c) {
    if (rn_task_val(t, "norm")) return strcmp(rn_val_text(t, "norm"), "gn") == 0;
    return strcmp(rn_model_norm(t, c, "model"), "gn") == 0 || strcmp(rn_model_norm(t, c, "suspect"), "gn") == 0;
}

double rn_model_branches(const rn_task *t, const rn_ctx *c, const char *param) {
    const char *scheme = rn_model_scheme(t, c, param);
    return strcmp(scheme, "v2") == 0 || strcmp(scheme, "v3") == 0 ? 2 : 1;
}

int rn_accuracy_recorded(const rn_task *t, const rn_ctx *c, const char *param) {
    return rn_producer(t, c, param) != NULL && rn_arch_mflop(rn_model_arch(t, c, param)) <= IP_INFER_SMALL_MFLOP;
}

double rn_owner_eval_seconds(const rn_task *t, const rn_ctx *c, const char *param, int deployed) {
    int refolded = deployed && strcmp(rn_model_scheme(t, c, param), "v1") == 0;
    if (!refolded && rn_accuracy_recorded(t, c, param)) return 0;
    return rn_infer_seconds(rn_model_arch(t, c, param), rn_data_images(c, 0));
}

double rn_data_images(const rn_ctx *c, int train) {
    size_t lim = train ? c->train_limit : c->test_limit;
    return lim ? (double)lim : (train ? 50000.0 : 10000.0);
}

long rn_val_i(const rn_task *t, const char *name) {
    const ip_value *v = rn_task_val(t, name);
    return v ? (long)v->u.i : 0;
}

double rn_val_f(const rn_task *t, const char *name) {
    const ip_value *v = rn_task_val(t, name);
    return v ? v->u.f : 0;
}

const char *rn_val_text(const rn_task *t, const char *name) {
    const ip_value *v = rn_task_val(t, name);
    return v && v->text ? v->text : "";
}
