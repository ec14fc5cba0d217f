/* The kinds' shared cost model (cost.h). */
#include "cost.h"

#include <string.h>

double rn_arch_mflop(const char *arch) {
    if (strcmp(arch, "alexnet-p") == 0) return 440.0;
    if (strcmp(arch, "resnet18-p") == 0) return 1111.0;
    if (strcmp(arch, "small-p-wide") == 0) return 58.0;
    if (strcmp(arch, "small-p-narrow") == 0) return 3.9;
    return RN_SMALL_P_MFLOP;
}

double rn_seconds_for(double images, double mflop, double passes) { return images * mflop * 1e6 * passes / 60e9; }

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
