/* The cost model's speed factor for the machine at hand (cost.h,
 * rn_cost_calibrate): small-p training steps on random data at one thread,
 * as the rows of cost.c were measured (`ipsweep bench train --arch small-p
 * --threads 1 --scheme baseline`), against small-p's row. One factor for
 * every row: measured on an AVX2 machine, the kinds of the quick study ran
 * at 0.42-0.65x the rows, 0.52x in total (docs/performance.md "Cost model"). */
#include <stdio.h>
#include <stdlib.h>

#include "../../core/model/model.h"
#include "../../core/nn/layers.h"
#include "../../core/nn/optim.h"
#include "../../core/util/proc.h"
#include "../../core/util/rng.h"
#include "../cli/commands.h"
#include "cost.h"

enum { CAL_BATCH = 64, CAL_WARMUP = 2, CAL_STEPS = 6, CAL_ROUNDS = 3 };

int rn_cost_calibrate(double *factor, double *train_per_s, ip_err *e) {
    ip_model_cfg cfg = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", rn_arch(NULL)->arch); /* the first row: small-p */
    if (ip_scheme_parse("baseline", &cfg.scheme) || ip_norm_parse("bn", &cfg.norm))
        return ip_fail(e, "calibration: no baseline scheme or bn norm");
    ip_set_threads(1);
    ip_model m;
    if (ip_model_build(&m, &cfg, e) || ip_model_init(&m, 1, NULL, e) || ip_model_plan(&m, CAL_BATCH, e) ||
        ip_model_plan_backward(&m, e))
        return -1;
    const size_t sample = (size_t)cfg.in_c * cfg.in_h * cfg.in_w;
    float *x = malloc(CAL_BATCH * sample * sizeof *x);
    int32_t *y = malloc(CAL_BATCH * sizeof *y);
    ip_optim opt;
    ip_optim_cfg oc;
    ip_optim_defaults(&oc, IP_OPT_SGD);
    int rc = 0;
    if (!x || !y || ip_optim_init(&opt, &oc, m.nparams, e)) {
        free(x), free(y), ip_model_free(&m);
        return ip_fail(e, "calibration: out of memory");
    }
    ip_rng r;
    ip_rng_init(&r, 1, ip_stream("calibrate", 0));
    for (size_t i = 0; i < CAL_BATCH * sample; i++) x[i] = ip_rng_normal(&r);
    for (int i = 0; i < CAL_BATCH; i++) y[i] = (int32_t)ip_rng_below(&r, 10);
    double best = 0; /* the fastest round: the least disturbed by other processes */
    for (int round = 0; round < CAL_ROUNDS; round++) {
        double t = 0;
        for (int s = 0; s < CAL_WARMUP + CAL_STEPS; s++) {
            double t0 = ip_now_s();
            ip_model_zero_grad(&m);
            const float *logits = ip_model_forward(&m, x, CAL_BATCH, 1);
            xent_forward_backward(m.dlogits, logits, y, CAL_BATCH, 10, 1.f, NULL);
            ip_model_backward(&m, m.dlogits, NULL);
            ip_optim_step(&opt, &m, 0.01f);
            if (s >= CAL_WARMUP) t += ip_now_s() - t0;
        }
        double ips = t > 0 ? CAL_BATCH * CAL_STEPS / t : 0;
        if (ips > best) best = ips;
    }
    if (!(best > 0)) rc = ip_fail(e, "calibration: the training steps took no measurable time");
    *train_per_s = best;
    *factor = best / rn_arch(NULL)->train_per_s;
    ip_optim_free(&opt);
    ip_model_free(&m);
    free(x), free(y);
    return rc;
}
