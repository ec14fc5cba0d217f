/* ip_model_backward_input (core/model/model.c): the input gradient alone.
 * Its dx must be the full backward's to the bit (the fingerprint methods and
 * PGD switched to it, and their results must not move), and it must leave
 * every parameter gradient and the passport scratch's inputs alone. Checked on
 * every architecture, batch and group norm, baseline / v1 / v2 (both
 * branches), eval mode (fingerprints, PGD) and training mode, the fast and
 * the im2col-GEMM conv kernels, on fewer samples than the plan's batch. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/model/model.h"
#include "testutil.h"

typedef struct net {
    const char *arch;
    ip_norm_kind norm;
    ip_scheme scheme;
    int c, hw;
    int algo;     /* ip_conv_algo */
    int protocol; /* ip_protocol */
} net;

static void build(ip_model *m, const net *s, int batch) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", s->arch);
    cfg.in_c = s->c, cfg.in_h = cfg.in_w = s->hw, cfg.classes = 10;
    cfg.norm = s->norm, cfg.scheme = s->scheme, cfg.conv = s->algo, cfg.protocol = s->protocol;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 11, "input", &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(m, batch, &e), 0, "%s", e.msg);
}

static int all_zero(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != 0.f || signbit(a[i])) return 0;
    return 1;
}

/* One forward, then the input-only backward and the full one on the same
 * activations, each accumulating onto the same starting dx. */
static void check_one(const net *s, ip_model *m, int training, ip_branch br, float sign) {
    const int n = 3; /* the plan is for 4 */
    int classes = m->cfg.classes;
    size_t sample = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w, len = (size_t)n * sample;
    float *x = tu_alloc(len), *r = tu_alloc((size_t)n * classes);
    float *dfull = tu_alloc(len), *dinput = tu_alloc(len);
    float *params = tu_alloc(m->nparams);
    tu_fill(x, len, -1, 1, 41);
    tu_fill(r, (size_t)n * classes, -1, 1, 42);
    tu_fill(dfull, len, -1, 1, 43); /* both accumulate onto the same values */
    memcpy(dinput, dfull, len * sizeof(float));
    memcpy(params, m->params, m->nparams * sizeof(float));
    m->branch = br;
    m->sign_loss_scale = sign;
    ip_model_zero_grad(m);
    ip_model_forward(m, x, n, training);
    ip_model_backward_input(m, r, dinput);
    const char *what = training ? "training" : "eval";
    cr_assert(all_zero(m->grads, m->nparams), "%s %s %s: the input-only backward wrote parameter gradients", s->arch,
              ip_norm_name(s->norm), what);
    cr_assert_eq(memcmp(params, m->params, m->nparams * sizeof(float)), 0);
    ip_model_backward(m, r, dfull);
    cr_assert(!all_zero(m->grads, m->nparams), "%s: the full backward computed no parameter gradient", s->arch);
    cr_assert_eq(memcmp(dfull, dinput, len * sizeof(float)), 0,
                 "%s %s %s %s branch %d conv %s: the input gradients differ", s->arch, ip_norm_name(s->norm),
                 ip_scheme_name(s->scheme), what, (int)br, ip_conv_algo_name(s->algo));
    /* the gradient is a real one: not the starting values */
    tu_fill(dfull, len, -1, 1, 43);
    cr_assert_neq(memcmp(dfull, dinput, len * sizeof(float)), 0, "%s: no input gradient", s->arch);
    free(x), free(r), free(dfull), free(dinput), free(params);
}

static void check(const net *s) {
    ip_model m;
    build(&m, s, 4);
    for (int training = 0; training <= 1; training++) {
        check_one(s, &m, training, IP_BRANCH_PRIVATE, 0.f);
        if (s->scheme != IP_SCHEME_BASELINE) {
            check_one(s, &m, training, IP_BRANCH_PRIVATE, 1.f); /* the sign loss only reaches parameters */
            check_one(s, &m, training, IP_BRANCH_PUBLIC, 0.f);
        }
    }
    ip_model_free(&m);
}

Test(backward_input, small_p) {
    for (int norm = IP_NORM_BN; norm <= IP_NORM_GN; norm++)
        for (int scheme = IP_SCHEME_BASELINE; scheme <= IP_SCHEME_V2; scheme++)
            for (int algo = IP_CONV_FAST; algo <= IP_CONV_GEMM; algo++) {
                net s = {"small-p", (ip_norm_kind)norm, (ip_scheme)scheme, 1, 28, algo, IP_PROTOCOL_PAPER};
                check(&s);
            }
    net rgb = {"small-p", IP_NORM_BN, IP_SCHEME_V2, 3, 32, IP_CONV_FAST, IP_PROTOCOL_PAPER};
    check(&rgb);
}

Test(backward_input, alexnet_p) {
    net nets[] = {
        {"alexnet-p", IP_NORM_BN, IP_SCHEME_V2, 3, 32, IP_CONV_FAST, IP_PROTOCOL_PAPER},
        {"alexnet-p", IP_NORM_GN, IP_SCHEME_V1, 3, 32, IP_CONV_FAST, IP_PROTOCOL_PAPER},
        {"alexnet-p", IP_NORM_BN, IP_SCHEME_V1, 3, 32, IP_CONV_GEMM, IP_PROTOCOL_PAPER},
    };
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) check(&nets[i]);
}

Test(backward_input, resnet18_p) {
    net nets[] = {
        {"resnet18-p", IP_NORM_BN, IP_SCHEME_V2, 3, 32, IP_CONV_FAST, IP_PROTOCOL_PAPER},
        {"resnet18-p", IP_NORM_GN, IP_SCHEME_V1, 3, 32, IP_CONV_FAST, IP_PROTOCOL_PAPER},
        {"resnet18-p", IP_NORM_BN, IP_SCHEME_V2, 3, 32, IP_CONV_PRECISE, IP_PROTOCOL_DEEPIPR_CODE},
    };
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) check(&nets[i]);
}

/* NULL dx: nothing to compute, nothing touched */
Test(backward_input, null_dx) {
    net s = {"small-p", IP_NORM_BN, IP_SCHEME_V1, 1, 28, IP_CONV_FAST, IP_PROTOCOL_PAPER};
    ip_model m;
    build(&m, &s, 2);
    float x[2 * 784], r[2 * 10];
    tu_fill(x, 2 * 784, -1, 1, 44);
    tu_fill(r, 2 * 10, -1, 1, 45);
    ip_model_zero_grad(&m);
    ip_model_forward(&m, x, 2, 0);
    ip_model_backward_input(&m, r, NULL);
    cr_assert(all_zero(m.grads, m.nparams));
    ip_model_free(&m);
}
