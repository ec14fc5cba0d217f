/* `run --calibrate` (bench.h, rn_cost_calibrate): an architecture's training
 * and evaluation speeds at one thread on this machine, timed as `bench train`
 * times them, its training speed in small minibatches (RN_SMALL_BATCH: the
 * step's fixed part, rn_batch_factor), and its forger's speed, timed as
 * `bench forge` times it, for the cost model's factors
 * (runner/kinds/cost.c). Each apart, because they move apart: on
 * an AVX2 machine small-p trained at 0.61x its row and evaluated at 0.47x,
 * alexnet-p and resnet18-p at 0.70-0.74x both, and the quick study's kinds
 * that evaluate (fake1, eval) ran at 0.42x the rows, those that train at
 * 0.50-0.65x; later, small-p's fake1 took 1.4x the time its evaluation
 * factor gave, its forger running at ~0.5x its row against ~0.6x for its
 * evaluation; small-p trained as fast per image in minibatches of 16 as of
 * 64, where the rows' machine took ~1.26x (docs/performance.md "Cost
 * model"). */
#include <math.h>
#include <stdio.h>

#include "../../core/nn/layers.h"
#include "../cli/commands.h"
#include "../kinds/cost.h"
#include "bench.h"

enum { CAL_ROUNDS = 3, CAL_FORGE_IMAGES = 128 };
#define CAL_ROUND_SECONDS 0.2 /* of each kind of pass, at the row's speed */

/* units of `per_unit` images in a round: CAL_ROUND_SECONDS at `per_s` images/s, at least `least` */
static int round_units(double per_s, int per_unit, int least) {
    double units = ceil(CAL_ROUND_SECONDS * per_s / per_unit);
    return units < least ? least : (int)units;
}

/* The forger's passport-images per second: random passports of an untrained
 * v1 model on CAL_FORGE_IMAGES random images, full mode (2 chunks of 64
 * images, the automatic group), the fastest of CAL_ROUNDS rounds. */
static int time_forge(const rn_arch_speed *row, double *per_s, ip_err *e) {
    rn_forge_rig rig;
    if (rn_forge_rig_init(&rig, row->arch, "bn", CAL_FORGE_IMAGES, e) != 0) return -1;
    ip_forge_cfg fc;
    ip_forge_defaults(&fc);
    const int n = round_units(rn_row_speed(row, RN_SPEED_FORGE), CAL_FORGE_IMAGES, 2);
    double acc, det;
    int rc = -1;
    if (ip_forge_create(&rig.f, &rig.m, &rig.d, CAL_FORGE_IMAGES, &fc, e) != 0 ||
        ip_keygen_init(&rig.kg, IP_KEY_RANDOM, &rig.m, NULL, NULL, 7, e) != 0 ||
        ip_forge_real(rig.f, &acc, &det, NULL, e) != 0 || ip_forge_result_alloc(&rig.res, (size_t)n, e) != 0)
        goto done;
    *per_s = 0;
    for (int round = 0; round < CAL_ROUNDS; round++) {
        if (ip_forge_run(rig.f, ip_forge_keygen_fn, &rig.kg, (uint64_t)round * n, (size_t)n, 0, 0.0, &rig.res, e) != 0)
            goto done;
        double ips = rig.res.seconds > 0 ? rig.res.samples / rig.res.seconds : 0;
        if (ips > *per_s) *per_s = ips;
    }
    rc = 0;
done:
    rn_forge_rig_free(&rig);
    return rc;
}

/* The fastest of CAL_ROUNDS rounds (the least disturbed by other processes)
 * of training steps in minibatches of `batch`, ~CAL_ROUND_SECONDS at
 * `row_train` images/s each, and, when `infer` is given, of eval-mode passes
 * at `row_infer`: images/s. */
static int time_rig(ip_model_cfg *cfg, int batch, double row_train, double *train, double row_infer, double *infer,
                    ip_err *e) {
    rn_bench_rig r;
    if (rn_bench_rig_init(&r, cfg, batch, e) != 0) return -1;
    const int ts = round_units(row_train, batch, 1), is = round_units(row_infer, batch, 1);
    *train = 0;
    if (infer) *infer = 0;
    for (int round = 0; round < CAL_ROUNDS; round++) {
        /* one untimed step of each first (its pages are new), then none: resnet18-p's is ~2 s */
        double t = rn_bench_time_steps(&r, round == 0, ts);
        double ips = t > 0 ? (double)batch * ts / t : 0;
        if (ips > *train) *train = ips;
        if (!infer) continue;
        t = rn_bench_time_infer(&r, round == 0, is);
        ips = t > 0 ? (double)batch * is / t : 0;
        if (ips > *infer) *infer = ips;
    }
    rn_bench_rig_free(&r);
    return 0;
}

int rn_cost_calibrate(const char *arch, double speed[], ip_err *e) {
    const rn_arch_speed *row = rn_arch(arch);
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", row->arch);
    if (ip_scheme_parse("baseline", &cfg.scheme) || ip_norm_parse("bn", &cfg.norm))
        return ip_fail(e, "calibration: no baseline scheme or bn norm");
    ip_set_threads(1);
    double s[RN_SPEEDS] = {0};
    if (time_rig(&cfg, RN_ROW_BATCH, row->train_per_s, &s[RN_SPEED_TRAIN], row->infer_per_s, &s[RN_SPEED_INFER], e) ||
        time_rig(&cfg, RN_SMALL_BATCH, rn_row_speed(row, RN_SPEED_TRAIN_SMALL), &s[RN_SPEED_TRAIN_SMALL], 0, NULL, e) ||
        time_forge(row, &s[RN_SPEED_FORGE], e))
        return -1;
    for (int k = 0; k < RN_SPEEDS; k++) {
        if (!(s[k] > 0)) return ip_fail(e, "calibration: %s's passes took no measurable time", row->arch);
        speed[k] = s[k];
    }
    return 0;
}
