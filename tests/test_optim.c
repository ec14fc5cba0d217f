#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/nn/optim.h"

Test(optim, sgd_momentum_weight_decay_matches_pytorch_formula) {
    ip_optim_cfg c;
    ip_optim_defaults(&c, IP_OPT_SGD);
    ip_optim o;
    ip_err e;
    cr_assert_eq(ip_optim_init(&o, &c, 2, &e), 0);
    float p[2] = {1.f, -2.f}, g[2] = {0.5f, 0.25f};
    float v[2] = {0, 0}, q[2] = {1.f, -2.f};
    for (int step = 0; step < 3; step++) {
        ip_optim_step_vec(&o, p, g, 2, 0.1f);
        for (int i = 0; i < 2; i++) {
            float gi = g[i] + 5e-4f * q[i];
            v[i] = 0.9f * v[i] + gi;
            q[i] -= 0.1f * v[i];
        }
    }
    for (int i = 0; i < 2; i++) cr_assert_float_eq(p[i], q[i], 1e-6);
    ip_optim_free(&o);
}

Test(optim, adam_first_step_moves_by_lr) {
    /* with bias correction, Adam's first step is lr * sign(g) (up to eps) */
    ip_optim_cfg c;
    ip_optim_defaults(&c, IP_OPT_ADAM);
    ip_optim o;
    ip_err e;
    cr_assert_eq(ip_optim_init(&o, &c, 3, &e), 0);
    float p[3] = {0, 0, 0}, g[3] = {2.f, -0.001f, 40.f};
    ip_optim_step_vec(&o, p, g, 3, 0.01f);
    cr_assert_float_eq(p[0], -0.01f, 1e-6);
    cr_assert_float_eq(p[1], 0.01f, 1e-5);
    cr_assert_float_eq(p[2], -0.01f, 1e-6);
    ip_optim_free(&o);
}

Test(optim, multistep_schedule) {
    ip_optim_cfg c;
    ip_optim_defaults(&c, IP_OPT_SGD);
    c.lr = 0.01f;
    c.nmilestones = 2;
    c.milestones[0] = 100, c.milestones[1] = 150;
    cr_assert_float_eq(ip_optim_lr_at(&c, 0), 0.01f, 1e-9);
    cr_assert_float_eq(ip_optim_lr_at(&c, 99), 0.01f, 1e-9);
    cr_assert_float_eq(ip_optim_lr_at(&c, 100), 0.001f, 1e-9);
    cr_assert_float_eq(ip_optim_lr_at(&c, 150), 0.0001f, 1e-10);
}
