/* `run --calibrate` (bench.h, rn_cost_calibrate): this machine's speed
 * factor over the cost model's rows (runner/kinds/cost.c), timed as `bench
 * train` times small-p training at one thread, against small-p's row. One
 * factor for every row: on an AVX2 machine the kinds of the quick study ran
 * at 0.42-0.65x the rows, 0.52x in total (docs/performance.md "Cost model"). */
#include <stdio.h>
#include <stdlib.h>

#include "../../core/nn/layers.h"
#include "../cli/commands.h"
#include "../kinds/cost.h"
#include "bench.h"

enum { CAL_BATCH = 64, CAL_WARMUP = 2, CAL_STEPS = 6, CAL_ROUNDS = 3 };

int rn_cost_calibrate(double *factor, double *train_per_s, ip_err *e) {
    const rn_arch_speed *row = rn_arch(NULL); /* the first row: small-p */
    ip_model_cfg cfg = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", row->arch);
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
    if (!x || !y || ip_optim_init(&opt, &oc, m.nparams, e)) {
        free(x), free(y), ip_model_free(&m);
        return ip_fail(e, "calibration: out of memory");
    }
    rn_bench_random_batch(x, y, CAL_BATCH, sample);
    double best = 0; /* the fastest round: the least disturbed by other processes */
    for (int round = 0; round < CAL_ROUNDS; round++) {
        double t = rn_bench_time_steps(&m, &opt, x, y, CAL_BATCH, CAL_WARMUP, CAL_STEPS);
        double ips = t > 0 ? CAL_BATCH * CAL_STEPS / t : 0;
        if (ips > best) best = ips;
    }
    ip_optim_free(&opt);
    ip_model_free(&m);
    free(x), free(y);
    if (!(best > 0)) return ip_fail(e, "calibration: the training steps took no measurable time");
    *train_per_s = best;
    *factor = best / row->train_per_s;
    return 0;
}
