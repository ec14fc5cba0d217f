#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ip_optim_defaults(ip_optim_cfg *c, ip_opt_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = kind == IP_OPT_SGD ? 0.01f : 0.001f;
    c->momentum = 0.9f;
    c->weight_decay = kind == IP_OPT_SGD ? 5e-4f : 0.f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->lr_decay = 0.1f;
}

int ip_optim_init(ip_optim *o, const ip_optim_cfg *cfg, size_t nparams, ip_err *e) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = nparams;
    size_t per = cfg->kind == IP_OPT_ADAM ? 2 : 1;
    o->state = calloc(per * (nparams ? nparams : 1), sizeof(float));
    if (!o->state) return ip_fail(e, "out of memory for optimiser state (%zu floats)", per * nparams);
    return 0;
}

void ip_optim_free(ip_optim *o) {
    free(o->state);
    o->state = NULL;
}

float ip_optim_lr_at(const ip_optim_cfg *c, int epoch) {
    float lr = c->lr;
    for (int i = 0; i < c->nmilestones; i++)
        if (epoch >= c->milestones[i]) lr *= c->lr_decay;
    return lr;
}

/* Updates p[0..n) whose optimiser state starts at state offset `off`.
 * bc1/bc2: Adam bias corrections for the current step. */
static void update(const ip_optim_cfg *c, float *state, size_t total, size_t off, float *restrict p,
                   const float *restrict g, size_t n, float lr, float bc1, float bc2) {
    const float wd = c->weight_decay;
    if (c->kind == IP_OPT_SGD) {
        float *restrict v = state + off;
        const float mu = c->momentum;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            v[i] = mu * v[i] + gi;
            p[i] -= lr * v[i];
        }
    } else {
        float *restrict m1 = state + off, *restrict m2 = state + total + off;
        const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
        const float step = lr / bc1, inv_sqrt_bc2 = 1.f / sqrtf(bc2);
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            m1[i] = b1 * m1[i] + (1.f - b1) * gi;
            m2[i] = b2 * m2[i] + (1.f - b2) * gi * gi;
            p[i] -= step * m1[i] / (sqrtf(m2[i]) * inv_sqrt_bc2 + eps);
        }
    }
}

static void bias_corrections(ip_optim *o, float *bc1, float *bc2) {
    o->t++;
    *bc1 = 1.f - powf(o->cfg.beta1, (float)o->t);
    *bc2 = 1.f - powf(o->cfg.beta2, (float)o->t);
}

void ip_optim_step(ip_optim *o, ip_model *m, float lr) {
    float bc1, bc2;
    bias_corrections(o, &bc1, &bc2);
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        if (t->kind != IP_TENSOR_PARAM || !t->trainable) continue;
        update(&o->cfg, o->state, o->n, t->offset, m->params + t->offset, m->grads + t->offset, t->numel, lr, bc1,
               bc2);
    }
}

void ip_optim_step_vec(ip_optim *o, float *p, const float *g, size_t n, float lr) {
    float bc1, bc2;
    bias_corrections(o, &bc1, &bc2);
    update(&o->cfg, o->state, o->n, 0, p, g, n < o->n ? n : o->n, lr, bc1, bc2);
}
