/* `run --calibrate` (bench.h, rn_cost_calibrate): an architecture's training
 * and evaluation speeds at one thread on this machine, timed as `bench train`
 * times them, for the cost model's factors (runner/kinds/cost.c). Two per
 * architecture: on an AVX2 machine small-p trained at 0.61x its row and
 * evaluated at 0.47x, alexnet-p and resnet18-p at 0.70-0.74x both, and the
 * quick study's kinds that evaluate (fake1, eval) ran at 0.42x the rows, those
 * that train at 0.50-0.65x (docs/performance.md "Cost model"). */
#include <math.h>
#include <stdio.h>

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
    if (ip_scheme_parse("baseline", &cfg.scheme) || ip_norm_parse("bn", &cfg.norm))
        return ip_fail(e, "calibration: no baseline scheme or bn norm");
    ip_set_threads(1);
    rn_bench_rig r;
    if (rn_bench_rig_init(&r, &cfg, CAL_BATCH, e) != 0) return -1;
    const int ts = round_steps(row->train_per_s), is = round_steps(row->infer_per_s);
    double train = 0, infer = 0; /* the fastest round of each: the least disturbed by other processes */
    for (int round = 0; round < CAL_ROUNDS; round++) {
        /* one untimed step of each first (its pages are new), then none: resnet18-p's is ~2 s */
        double t = rn_bench_time_steps(&r, round == 0, ts);
        double ips = t > 0 ? CAL_BATCH * ts / t : 0;
        if (ips > train) train = ips;
        t = rn_bench_time_infer(&r, round == 0, is);
        ips = t > 0 ? CAL_BATCH * is / t : 0;
        if (ips > infer) infer = ips;
    }
    rn_bench_rig_free(&r);
    if (!(train > 0) || !(infer > 0)) return ip_fail(e, "calibration: %s's passes took no measurable time", row->arch);
    *train_per_s = train;
    *infer_per_s = infer;
    return 0;
}
