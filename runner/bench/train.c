/* `ipsweep bench train`: training and inference speed of one architecture on
 * random data, to be compared side by side with ../shared/bench/torch_anchor.py
 * (docs/performance.md, scripts/bench.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/nn/layers.h"
#include "../../core/model/model.h"
#include "../../core/nn/optim.h"
#include "../../core/util/proc.h"
#include "../../core/util/rng.h"
#include "../cli/cli.h"
#include "../cli/commands.h"
#include "bench.h"

int rn_bench_train(int argc, char **argv) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p");
    char norm[8] = "bn", scheme[16] = "v1", conv[16] = "fast";
    int batch = 64, steps = 10, threads = 0, warmup = 3, profile = 0;
    cli_opt opts[] = {
        {"arch", CLI_STR, cfg.arch, sizeof cfg.arch, "NAME", "small-p (1x28x28) | alexnet-p (3x32x32) | resnet18-p (3x32x32) | ..."},
        {"norm", CLI_STR, norm, sizeof norm, "bn|gn", "normalisation (default bn)"},
        {"conv", CLI_STR, conv, sizeof conv, "fast|precise", "convolution algorithms (default fast; the train key `conv`)"},
        {"scheme", CLI_STR, scheme, sizeof scheme, "S", "baseline | v1 | v2 (default v1, as torch_anchor.py)"},
        {"batch", CLI_INT, &batch, 0, "N", "minibatch (default 64)"},
        {"steps", CLI_INT, &steps, 0, "N", "timed steps (default 10)"},
        {"warmup", CLI_INT, &warmup, 0, "N", "untimed steps first (default 3)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default all cores)"},
        {"profile", CLI_FLAG, &profile, 0, NULL, "also print the training time of every op (stderr)"},
    };
    cli_cmd c = {"bench train", "ipsweep bench train [--arch A] [--batch N] [--steps N] [--threads N]",
                 "Times SGD training steps and eval-mode inference on random data of the arch's\n"
                 "reference input shape (the shapes torch_anchor.py uses) and prints train_img_per_s,\n"
                 "infer_img_per_s, gflops (training, counting backward as 2x forward), infer_gflops, peak_rss_mb.",
                 opts, (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (ip_norm_parse(norm, &cfg.norm) || ip_scheme_parse(scheme, &cfg.scheme) ||
        ip_conv_algo_parse(conv, &cfg.conv) || cfg.conv > IP_CONV_PRECISE)
        return cli_error("bench train", "bad --norm, --scheme or --conv");
    if (batch < 1 || steps < 1 || warmup < 0) return cli_error("bench train", "--batch and --steps must be positive");
    int small = strncmp(cfg.arch, "small-p", 7) == 0;
    cfg.in_c = small ? 1 : 3;
    cfg.in_h = cfg.in_w = small ? 28 : 32;
    cfg.classes = 10;
    int nt = ip_set_threads(threads);
    ip_model m;
    ip_err e = {{0}};
    if (ip_model_build(&m, &cfg, &e) || ip_model_init(&m, 1, NULL, &e) || ip_model_plan(&m, batch, &e)) {
        fprintf(stderr, "ipsweep bench train: %s\n", e.msg);
        return 1;
    }
    size_t sample = (size_t)cfg.in_c * cfg.in_h * cfg.in_w;
    float *x = malloc((size_t)batch * sample * sizeof *x);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    ip_optim opt;
    ip_optim_cfg oc;
    ip_optim_defaults(&oc, IP_OPT_SGD);
    if (!x || !y || ip_optim_init(&opt, &oc, m.nparams, &e)) return fprintf(stderr, "ipsweep bench: out of memory\n"), 1;
    ip_rng r;
    ip_rng_init(&r, 1, ip_stream("bench", 1));
    for (size_t i = 0; i < (size_t)batch * sample; i++) x[i] = ip_rng_normal(&r);
    for (int i = 0; i < batch; i++) y[i] = (int32_t)ip_rng_below(&r, 10);
    m.sign_loss_scale = m.npassports ? 1.f : 0.f;
    double t_train = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = ip_now_s();
        ip_model_zero_grad(&m);
        const float *logits = ip_model_forward(&m, x, batch, 1);
        xent_forward_backward(m.dlogits, logits, y, batch, 10, 1.f, NULL);
        ip_model_backward(&m, m.dlogits, NULL);
        ip_optim_step(&opt, &m, 0.01f);
        if (s >= warmup) t_train += ip_now_s() - t0;
    }
    if (profile) { /* a separate pass, so the timers do not perturb the figures above */
        m.op_seconds = calloc(2 * (size_t)m.nops, sizeof *m.op_seconds);
        for (int s = 0; m.op_seconds && s < steps; s++) {
            ip_model_zero_grad(&m);
            const float *logits = ip_model_forward(&m, x, batch, 1);
            xent_forward_backward(m.dlogits, logits, y, batch, 10, 1.f, NULL);
            ip_model_backward(&m, m.dlogits, NULL);
        }
        double total = 0;
        for (int i = 0; m.op_seconds && i < 2 * m.nops; i++) total += m.op_seconds[i];
        for (int i = 0; m.op_seconds && i < m.nops; i++)
            fprintf(stderr, "op %-16s %-8s fwd_ms=%7.2f bwd_ms=%7.2f (%4.1f%%)\n", m.ops[i].name,
                    (const char *[]){"conv", "norm", "affine", "add", "pool", "gap", "flatten", "linear"}[m.ops[i].kind],
                    1e3 * m.op_seconds[i] / steps, 1e3 * m.op_seconds[m.nops + i] / steps,
                    100 * (m.op_seconds[i] + m.op_seconds[m.nops + i]) / total);
        free(m.op_seconds);
        m.op_seconds = NULL;
    }
    double t_inf = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = ip_now_s();
        ip_model_forward(&m, x, batch, 0);
        if (s >= warmup) t_inf += ip_now_s() - t0;
    }
    double fwd = ip_model_flops_per_sample(&m);
    double train_ips = batch * steps / t_train, infer_ips = batch * steps / t_inf;
    printf("bench=train arch=%s scheme=%s norm=%s conv=%s threads=%d batch=%d steps=%d train_step_ms=%.2f "
           "train_img_per_s=%.1f infer_img_per_s=%.1f gflops=%.1f infer_gflops=%.1f fwd_mflop_per_img=%.1f "
           "peak_rss_mb=%.1f\n",
           cfg.arch, ip_scheme_name(cfg.scheme), ip_norm_name(cfg.norm), ip_conv_algo_name(cfg.conv), nt, batch, steps, 1e3 * t_train / steps,
           train_ips, infer_ips, 3 * fwd * train_ips / 1e9, fwd * infer_ips / 1e9, fwd / 1e6, ip_peak_rss_mb());
    ip_optim_free(&opt);
    ip_model_free(&m);
    free(x), free(y);
    return 0;
}
