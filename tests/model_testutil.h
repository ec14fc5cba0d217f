/* The model tests' common start (test_model.c, test_plan.c,
 * test_plan_eval.c): a model of `arch` on c x hw x hw inputs and 10 classes,
 * built, initialised (seed 7, signature "ok") and planned for `batch`. */
#ifndef IP_MODEL_TESTUTIL_H
#define IP_MODEL_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdio.h>

#include "../core/model/model.h"

static inline void tu_build_model(ip_model *m, const char *arch, ip_norm_kind norm, ip_scheme scheme, int c, int hw,
                                  int batch) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.in_c = c, cfg.in_h = cfg.in_w = hw, cfg.classes = 10;
    cfg.norm = norm, cfg.scheme = scheme;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 7, "ok", &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(m, batch, &e), 0, "%s", e.msg);
}

#endif
