/* `ipsweep bench fingerprint`: IPGuard fingerprint points per second
 * (core/ipguard/fingerprint.h; the task kinds fingerprint and match:
 * core/tasks/ipguard.c), on an untrained model or on a checkpoint. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "../../core/io/data.h"
#include "../../core/ipguard/fingerprint.h"
#include "../../core/ipguard/fp_engine.h"
#include "../../core/tasks/tasks.h"
#include "../../core/model/train.h"
#include "../../core/util/proc.h"
#include "../cli/cli.h"
#include "../cli/commands.h"
#include "bench.h"

int rn_bench_fingerprint(int argc, char **argv) {
    char arch[32] = "small-p", norm[8] = "bn", scheme[16] = "baseline", init[16] = "noise", target[16] = "random";
    char model_path[1024] = "", data[1024] = "";
    int points = 256, iters = 100, batch = 0, threads = 0, train_limit = 0, uncompacted = 0;
    char out[1024] = "";
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
        {"target", CLI_STR, target, sizeof target, "random|least-likely", "target label rule (default random)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores)"},
        {"model", CLI_STR, model_path, sizeof model_path, "FILE.h5", "a trained checkpoint instead of an untrained model"},
        {"data", CLI_STR, data, sizeof data, "SRC", "with --model: seeds (init train) and the owner's accuracy"},
        {"uncompacted", CLI_FLAG, &uncompacted, 0, NULL,
         "the reference twin: every forward carries the whole batch (frozen points too), as before compaction"},
        {"out", CLI_STR, out, sizeof out, "FILE.h5", "save the fingerprint (to compare the twins' points)"},
        {"train-limit", CLI_INT, &train_limit, 0, "N", "with --init train: the first N training images (default 0 = all)"},
    };
    cli_cmd c = {"bench fingerprint",
                 "ipsweep bench fingerprint [--arch small-p] [--points K] [--iters M] [--batch B] [--model FILE --data SRC]",
                 "Times IPGuard fingerprint generation (all K points batched) on an untrained model, or on --model,\n"
                 "and prints points_per_s (points requested per second) and point_iters_per_s; e2e_seconds is the\n"
                 "whole run as a fingerprint task does it (loading the model and data, the owner's accuracy,\n"
                 "seeds, generation), e.g. --points 200 for the quick study's tasks.",
                 opts, (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    ip_fp_cfg fc;
    ip_fp_defaults(&fc);
    if (points < 1 || iters < 0 || batch < 0 || train_limit < 0 || !(lr > 0) || !(margin >= 0))
        return cli_error("bench fingerprint", "--points must be positive, --iters/--batch/--k non-negative, --lr positive");
    if (ip_fp_init_parse(init, &fc.init) != 0) return cli_error("bench fingerprint", "bad --init \"%s\"", init);
    if (ip_fp_target_parse(target, &fc.target) != 0) return cli_error("bench fingerprint", "bad --target \"%s\"", target);
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
    double t_start = ip_now_s();
    if (model_path[0]) {
        if (ip_task_open(&m, &test, model_path, data, 1000, &e) != 0 || ip_model_plan(&m, 256, &e) != 0 ||
            ip_evaluate(&m, &test, 256, &owner_acc, &e) != 0)
            goto fail;
        if (fc.init == IP_FP_INIT_TRAIN &&
            (ip_data_load(&train, data, IP_SPLIT_TRAIN, (size_t)train_limit, &e) != 0 || ip_data_match_model(&train, &m, &e) != 0))
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
    fp_engine_set_uncompacted(uncompacted);
    struct rusage r0, ru;
    getrusage(RUSAGE_SELF, &r0);
    if (ip_fingerprint_generate(&m, fc.init == IP_FP_INIT_TRAIN ? &train : NULL, lo, hi, &fc, &fp, &run, &e) != 0)
        goto fail;
    double e2e = ip_now_s() - t_start;
    if (out[0] && ip_fingerprint_save(&fp, out, &e) != 0) goto fail;
    double isum = 0;
    for (size_t p = 0; p < run.requested; p++) isum += run.iterations[p];
    getrusage(RUSAGE_SELF, &ru);
    /* CPU seconds of the generation: on a shared machine they move less with the load than wall time */
    double cpu = (double)(ru.ru_utime.tv_sec - r0.ru_utime.tv_sec + ru.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec - r0.ru_utime.tv_usec + ru.ru_stime.tv_usec - r0.ru_stime.tv_usec) * 1e-6;
    printf("bench=fingerprint arch=%s scheme=%s uncompacted=%d threads=%d points=%d max_iter=%d batch=%d k=%g lr=%g init=%s "
           "owner_acc=%.4f converged=%zu unconverged=%zu iters_mean=%.1f seconds=%.3f cpu_seconds=%.3f e2e_seconds=%.3f points_per_s=%.2f "
           "converged_per_s=%.2f point_iters_per_s=%.0f planned_batch=%d peak_rss_mb=%.1f\n",
           arch, ip_scheme_name(m.cfg.scheme), uncompacted, nt, points, iters, batch, (double)margin, (double)lr, init, owner_acc, fp.n,
           fp.unconverged, isum / points, run.seconds, cpu, e2e, points / run.seconds, fp.n / run.seconds, isum / run.seconds,
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
