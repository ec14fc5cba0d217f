/* Task kinds fingerprint and match (IPGuard, core/fingerprint.h,
 * docs/fingerprint.md), and the `ipsweep bench fingerprint` benchmark.
 *
 * Wiring (done elsewhere): kinds.c lists &rn_kind_fingerprint and
 * &rn_kind_match in rn_kinds[]; cmd_bench.c dispatches "fingerprint" to
 * rn_bench_fingerprint(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../core/ckpt.h"
#include "../core/data.h"
#include "../core/fingerprint.h"
#include "../core/rng.h"
#include "../core/tasks.h"
#include "../core/train.h"
#include "cli.h"
#include "commands.h"
#include "kinds.h"

/* ---------------- fingerprint ---------------- */

static const rn_key fingerprint_keys[] = {
    {"model", RN_T_MODEL, NULL, 0, 0, NULL, "the owner model whose classification boundary is fingerprinted"},
    {"points", RN_T_INT, "100", 1, 1e6, NULL, "K: seeds optimised into boundary points (converged ones are kept)"},
    {"k", RN_T_FLOAT, "1", 0, 1e6, NULL, "margin k in logits: the target label j beats the seed's label i by k"},
    {"init", RN_T_ENUM, "train", 0, 0, "train|noise", "seeds: training images, or uniform noise in the valid input range"},
    {"target", RN_T_ENUM, "random", 0, 0, "random|least-likely", "target label j (never the seed's label i)"},
    {"lr", RN_T_FLOAT, "0.01", 1e-9, 100, NULL, "Adam learning rate on the inputs (normalised units)"},
    {"max_iter", RN_T_INT, "1000", 0, 1e7, NULL, "Adam steps at most; a point still above zero loss is dropped"},
    {"batch", RN_T_INT, "0", 0, 1e6, NULL, "points optimised together in one forward/backward (0 = all, at most ~1 GB of activations)"},
    {"branch", RN_T_ENUM, "default", 0, 0, "default|public|private",
     "passport models: branch fingerprinted (default: public for v2/v3, what a thief deploys)"},
    {"seed", RN_T_INT, "1", 0, 2147483647, NULL, "seed images, noise and targets"},
    {"fpr", RN_T_FLOAT, "0.05", 0, 1, NULL,
     "verdicts: the matching-rate threshold is the smallest with at most this false-positive rate on the independent suspects (results /ipguard)"},
};

/* Rough seconds on one core. The task does not know the owner's architecture:
 * take small-p's ~15 MFLOP per forward, 3 forwards' worth per iteration
 * (forward + backward to the inputs and weights), ~100 iterations per point
 * on average (capped by max_iter), at ~60 GFLOP/s. */
static double fingerprint_cost(const rn_task *t, const rn_ctx *c) {
    double iters = (double)rn_param_i(t, "max_iter");
    if (iters > 100) iters = 100;
    double test = c->test_limit ? (double)c->test_limit : 10000.0;
    return (double)rn_param_i(t, "points") * (iters + 1) * 3 * 15e6 / 60e9 + test * 15e6 / 60e9 + 0.5;
}

static int parse_branch(const rn_task *t, int *out, ip_err *e) {
    if (ip_fp_branch_parse(rn_param_str(t, "branch"), out) != 0)
        return ip_fail(e, "bad branch \"%s\"", rn_param_str(t, "branch"));
    return 0;
}

static int fingerprint_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_fingerprint_task ft;
    ip_fingerprint_task_defaults(&ft);
    if (rn_copy_str(ft.model_path, sizeof ft.model_path, rn_param_str(t, "model_path"), "model path", e) ||
        rn_copy_str(ft.data, sizeof ft.data, c->data_source, "data.source", e) ||
        rn_copy_str(ft.out, sizeof ft.out, t->checkpoint, "fingerprint path", e))
        return -1;
    if (ip_fp_init_parse(rn_param_str(t, "init"), &ft.fp.init) != 0) return ip_fail(e, "bad init");
    if (ip_fp_target_parse(rn_param_str(t, "target"), &ft.fp.target) != 0) return ip_fail(e, "bad target");
    if (parse_branch(t, &ft.fp.branch, e) != 0) return -1;
    ft.train_limit = c->train_limit;
    ft.test_limit = c->test_limit;
    ft.fp.points = (size_t)rn_param_i(t, "points");
    ft.fp.margin = (float)rn_param_f(t, "k");
    ft.fp.lr = (float)rn_param_f(t, "lr");
    ft.fp.max_iter = (int)rn_param_i(t, "max_iter");
    ft.fp.batch = (int)rn_param_i(t, "batch");
    ft.fp.seed = (uint64_t)rn_param_i(t, "seed");
    return ip_task_fingerprint(&ft, out, e);
}

const rn_kind rn_kind_fingerprint = {
    "fingerprint",
    "IPGuard: K points just across the owner's classification boundary, saved as a fingerprint file "
    "(docs/fingerprint.md)",
    fingerprint_keys,
    RN_NKEYS(fingerprint_keys),
    RN_OUT_FINGERPRINT,
    fingerprint_cost,
    fingerprint_run,
    NULL,
    NULL};

/* ---------------- match ---------------- */

static const rn_key match_keys[] = {
    {"fingerprint", RN_T_FINGERPRINT, NULL, 0, 0, NULL, "the owner's fingerprint (a fingerprint entry)"},
    {"suspect", RN_T_MODEL, NULL, 0, 0, NULL, "the suspect model (a pirated copy or an independent model)"},
    {"branch", RN_T_ENUM, "default", 0, 0, "default|public|private",
     "passport suspects: branch queried (default: public for v2/v3)"},
};

static double match_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    double test = c->test_limit ? (double)c->test_limit : 10000.0;
    return (test + 1000) * 15e6 / 60e9 + 0.2;
}

static int match_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_match_task mt = {0};
    if (rn_copy_str(mt.fingerprint_path, sizeof mt.fingerprint_path, rn_param_str(t, "fingerprint_path"),
                    "fingerprint path", e) ||
        rn_copy_str(mt.suspect_path, sizeof mt.suspect_path, rn_param_str(t, "suspect_path"), "suspect path", e) ||
        rn_copy_str(mt.data, sizeof mt.data, c->data_source, "data.source", e))
        return -1;
    if (parse_branch(t, &mt.branch, e) != 0) return -1;
    mt.test_limit = c->test_limit;
    return ip_task_match(&mt, out, e);
}

const rn_kind rn_kind_match = {
    "match",
    "IPGuard: matching rate of a suspect model on a fingerprint (and the suspect's test accuracy)",
    match_keys,
    RN_NKEYS(match_keys),
    RN_OUT_NONE,
    match_cost,
    match_run,
    NULL,
    NULL};

/* ---------------- ipsweep bench fingerprint ---------------- */

int rn_bench_fingerprint(int argc, char **argv) {
    char arch[32] = "small-p", norm[8] = "bn", scheme[16] = "baseline", init[16] = "noise";
    char model_path[1024] = "", data[1024] = "";
    int points = 256, iters = 100, batch = 0, threads = 0;
    float margin = 1.f, lr = 0.01f;
    cli_opt opts[] = {
        {"arch", CLI_STR, arch, sizeof arch, "NAME", "small-p (1x28x28) | alexnet-p (3x32x32) | ... (default small-p)"},
        {"norm", CLI_STR, norm, sizeof norm, "bn|gn", "normalisation of the untrained model (default bn)"},
        {"scheme", CLI_STR, scheme, sizeof scheme, "S", "baseline | v1 | v2 of the untrained model (default baseline)"},
        {"points", CLI_INT, &points, 0, "K", "points (default 256)"},
        {"iters", CLI_INT, &iters, 0, "M", "max_iter (default 100)"},
        {"batch", CLI_INT, &batch, 0, "B", "points per forward/backward (default 0 = all)"},
        {"k", CLI_FLOAT, &margin, 0, "K", "margin (default 1)"},
        {"lr", CLI_FLOAT, &lr, 0, "LR", "Adam learning rate (default 0.01)"},
        {"init", CLI_STR, init, sizeof init, "train|noise", "seeds (train needs --data; default noise)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores)"},
        {"model", CLI_STR, model_path, sizeof model_path, "FILE.h5", "a trained checkpoint instead of an untrained model"},
        {"data", CLI_STR, data, sizeof data, "SRC", "with --model: seeds (init train) and the owner's accuracy"},
    };
    cli_cmd c = {"bench fingerprint",
                 "ipsweep bench fingerprint [--arch small-p] [--points K] [--iters M] [--batch B] [--model FILE --data SRC]",
                 "Times IPGuard fingerprint generation (all K points batched) on an untrained model, or on --model,\n"
                 "and prints points_per_s (points requested per second) and point_iters_per_s.",
                 opts, RN_NKEYS(opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    ip_fp_cfg fc;
    ip_fp_defaults(&fc);
    if (points < 1 || iters < 0 || batch < 0 || !(lr > 0) || !(margin >= 0))
        return cli_error("bench fingerprint", "--points must be positive, --iters/--batch/--k non-negative, --lr positive");
    if (ip_fp_init_parse(init, &fc.init) != 0) return cli_error("bench fingerprint", "bad --init \"%s\"", init);
    if (model_path[0] && !data[0]) return cli_error("bench fingerprint", "--model needs --data");
    if (fc.init == IP_FP_INIT_TRAIN && !model_path[0]) return cli_error("bench fingerprint", "--init train needs --model and --data");
    fc.points = (size_t)points, fc.max_iter = iters, fc.batch = batch, fc.margin = margin, fc.lr = lr;
    int nt = ip_set_threads(threads);
    ip_model m = {0};
    ip_dataset train = {0}, test = {0};
    ip_err e = {{0}};
    ip_fingerprint fp = {0};
    ip_fp_run run = {0};
    float lo[4] = {0}, hi[4] = {0};
    double owner_acc = -1;
    rc = 1;
    if (model_path[0]) {
        if (ip_task_open(&m, &test, model_path, data, 1000, &e) != 0 || ip_model_plan(&m, 256, &e) != 0 ||
            ip_evaluate(&m, &test, 256, &owner_acc, &e) != 0)
            goto fail;
        if (fc.init == IP_FP_INIT_TRAIN &&
            (ip_data_load(&train, data, IP_SPLIT_TRAIN, 0, &e) != 0 || ip_data_match_model(&train, &m, &e) != 0))
            goto fail;
        ip_data_input_range(&test, lo, hi);
        snprintf(arch, sizeof arch, "%s", m.cfg.arch);
    } else {
        ip_model_cfg cfg = {0};
        snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
        if (ip_norm_parse(norm, &cfg.norm) != 0 || ip_scheme_parse(scheme, &cfg.scheme) != 0)
            return cli_error("bench fingerprint", "bad --norm or --scheme");
        int small = strncmp(arch, "small-p", 7) == 0;
        cfg.in_c = small ? 1 : 3;
        cfg.in_h = cfg.in_w = small ? 28 : 32;
        cfg.classes = 10;
        if (ip_model_build(&m, &cfg, &e) != 0 || ip_model_init(&m, 1, NULL, &e) != 0) goto fail;
        for (int ch = 0; ch < cfg.in_c; ch++) lo[ch] = 0.f, hi[ch] = 1.f; /* no normalisation */
    }
    if (ip_fingerprint_generate(&m, fc.init == IP_FP_INIT_TRAIN ? &train : NULL, lo, hi, &fc, &fp, &run, &e) != 0)
        goto fail;
    double isum = 0;
    for (size_t p = 0; p < run.requested; p++) isum += run.iterations[p];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench=fingerprint arch=%s scheme=%s threads=%d points=%d max_iter=%d batch=%d k=%g lr=%g init=%s "
           "owner_acc=%.4f converged=%zu unconverged=%zu iters_mean=%.1f seconds=%.3f points_per_s=%.2f "
           "converged_per_s=%.2f point_iters_per_s=%.0f planned_batch=%d peak_rss_mb=%.1f\n",
           arch, ip_scheme_name(m.cfg.scheme), nt, points, iters, batch, (double)margin, (double)lr, init, owner_acc, fp.n,
           fp.unconverged, isum / points, run.seconds, points / run.seconds, fp.n / run.seconds, isum / run.seconds,
           m.batch, (double)ru.ru_maxrss / 1024.0);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ipsweep bench fingerprint: %s\n", e.msg);
done:
    ip_fp_run_free(&run);
    ip_fingerprint_free(&fp);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}
