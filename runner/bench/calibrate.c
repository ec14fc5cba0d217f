/* `run --calibrate` (bench.h, rn_cost_calibrate): an architecture's training
 * and evaluation speeds at one thread on this machine, timed as `bench train`
 * times them, for the cost model's factors (runner/kinds/cost.c). Two per
 * architecture: on an AVX2 machine small-p trained at 0.61x its row and
 * evaluated at 0.47x, alexnet-p and resnet18-p at 0.70-0.74x both, and the
 * quick study's kinds that evaluate (fake1, eval) ran at 0.42x the rows, those
 * that train at 0.50-0.65x (docs/performance.md "Cost model"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/nn/layers.h"
#include "../cli/commands.h"
#include "../kinds/cost.h"
#include "bench.h"

enum { CAL_BATCH = 64, CAL_ROUNDS = 3 };
#define CAL_ROUND_SECONDS 0.2 /* of each kind of pass, at the row's speed */

/* steps of a round: CAL_ROUND_SECONDS at `per_s` images/s, at least one */
static int round_steps(double per_s) {
    double steps = ceil(CAL_ROUND_SECONDS * per_s / CAL_BATCH);
    return steps < 1 ? 1 : (int)steps;
}

int rn_cost_calibrate(const char *arch, double *train_per_s, double *infer_per_s, ip_err *e) {
    const rn_arch_speed *row = rn_arch(arch);
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", row->arch);
    rn_bench_input_shape(&cfg);
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
    const int ts = round_steps(row->train_per_s), is = round_steps(row->infer_per_s);
    double train = 0, infer = 0; /* the fastest round of each: the least disturbed by other processes */
    for (int round = 0; round < CAL_ROUNDS; round++) {
        /* one untimed step of each first (its pages are new), then none: resnet18-p's is ~2 s */
        double t = rn_bench_time_steps(&m, &opt, x, y, CAL_BATCH, round == 0, ts);
        double ips = t > 0 ? CAL_BATCH * ts / t : 0;
        if (ips > train) train = ips;
        t = rn_bench_time_infer(&m, x, CAL_BATCH, round == 0, is);
        ips = t > 0 ? CAL_BATCH * is / t : 0;
        if (ips > infer) infer = ips;
    }
    ip_optim_free(&opt);
    ip_model_free(&m);
    free(x), free(y);
    if (!(train > 0) || !(infer > 0)) return ip_fail(e, "calibration: %s's passes took no measurable time", row->arch);
    *train_per_s = train;
    *infer_per_s = infer;
    return 0;
}
