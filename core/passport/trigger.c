/* The V3 trigger set: generation, normalisation, accuracy (trigger.h). */
#include "trigger.h"

#include <stdio.h>
#include <string.h>

#include "../util/rng.h"
#include "../model/train.h"

int ip_trigger_make(ip_dataset *t, size_t count, int c, int h, int w, int classes, uint64_t seed, ip_err *e) {
    if (count < 1 || count > IP_TRIGGER_MAX_COUNT)
        return ip_fail(e, "trigger set size must be 1..%d, got %zu", IP_TRIGGER_MAX_COUNT, count);
    if (classes < 2) return ip_fail(e, "a trigger set needs at least 2 classes, got %d", classes);
    if (ip_data_alloc(t, count, c, h, w, classes, e) != 0) return -1;
    size_t sample = (size_t)c * h * w;
    for (size_t k = 0; k < count; k++) {
        /* one stream per image: image k is the same whatever the count */
        ip_rng r;
        ip_rng_init(&r, seed, ip_stream("trigger-image", k));
        float *x = t->x + k * sample;
        /* one random 8-bit level per cell of IP_TRIGGER_CELL x IP_TRIGGER_CELL pixels (per
         * channel): i.i.d. per-pixel noise images all look alike after a conv and a pool, so a
         * CNN struggles to give them different labels (docs/passports.md: 0.48 vs 0.83) */
        int gh = (h + IP_TRIGGER_CELL - 1) / IP_TRIGGER_CELL, gw = (w + IP_TRIGGER_CELL - 1) / IP_TRIGGER_CELL;
        for (int ch = 0; ch < c; ch++)
            for (int gy = 0; gy < gh; gy++)
                for (int gx = 0; gx < gw; gx++) {
                    float v = (float)ip_rng_below(&r, 256) / 255.f;
                    for (int y = gy * IP_TRIGGER_CELL; y < h && y < (gy + 1) * IP_TRIGGER_CELL; y++)
                        for (int xx = gx * IP_TRIGGER_CELL; xx < w && xx < (gx + 1) * IP_TRIGGER_CELL; xx++)
                            x[((size_t)ch * h + y) * w + xx] = v;
                }
        ip_rng_init(&r, seed, ip_stream("trigger-label", k));
        t->y[k] = (int32_t)ip_rng_below(&r, (uint32_t)classes);
    }
    snprintf(t->name, sizeof t->name, "trigger");
    return 0;
}

int ip_trigger_attach(ip_model *m, size_t count, uint64_t seed, ip_err *e) {
    ip_dataset t;
    const ip_model_cfg *c = &m->cfg;
    if (ip_trigger_make(&t, count, c->in_c, c->in_h, c->in_w, c->classes, seed, e) != 0) return -1;
    ip_data_free(&m->trigger);
    m->trigger = t;
    m->trigger_seed = seed;
    return 0;
}

int ip_trigger_normalised(const ip_model *m, ip_dataset *out, ip_err *e) {
    if (m->trigger.n == 0) return ip_fail(e, "the model has no trigger set");
    if (ip_data_copy(out, &m->trigger, e) != 0) return -1;
    return ip_data_match_model(out, m, e);
}

int ip_trigger_acc(ip_model *m, ip_branch br, int batch, double *acc, ip_err *e) {
    ip_dataset t;
    if (ip_trigger_normalised(m, &t, e) != 0) return -1;
    ip_branch keep = m->branch;
    m->branch = br;
    int rc = ip_evaluate(m, &t, batch, acc, e);
    m->branch = keep;
    ip_data_free(&t);
    return rc;
}

int ip_trigger_metrics(ip_model *m, int batch, const char *prefix, ip_metrics *out, ip_err *e) {
    if (m->trigger.n == 0) return 0;
    int two = m->cfg.scheme == IP_SCHEME_V2 || m->cfg.scheme == IP_SCHEME_V3;
    static const char *const names[2] = {"trigger_acc", "trigger_acc_private"};
    const ip_branch br[2] = {two ? IP_BRANCH_PUBLIC : m->branch, IP_BRANCH_PRIVATE};
    for (int i = 0; i < 2; i++) {
        double acc;
        if (ip_trigger_acc(m, br[i], batch, &acc, e) != 0) return -1;
        if (prefix[0]) {
            char arr[IP_METRIC_NAME_LEN];
            snprintf(arr, sizeof arr, "%s%s", prefix, names[i]);
            if (ip_metrics_append(out, arr, acc, e) != 0) return -1;
        }
        if (ip_metrics_set(out, names[i], acc, e) != 0) return -1;
    }
    return 0;
}
