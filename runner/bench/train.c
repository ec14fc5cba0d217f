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

static const char *const op_kind_names[] = {"conv", "norm", "affine", "add", "pool", "gap", "flatten", "linear"};

/* Forward FLOPs of op i over n samples (multiply-add = 2): convolutions and
 * the classifier; 0 for the memory-bound ops. */
static double op_flops(const ip_model *m, int i, int n) {
    const ip_op *op = &m->ops[i];
    if (op->kind == IP_OP_CONV) return 2.0 * op->conv.cout * (double)ip_conv_k(&op->conv) * op->conv.oh * op->conv.ow * n;
    if (op->kind == IP_OP_LINEAR) return 2.0 * op->in_features * op->c * n;
    return 0;
}

/* Which kernels op i runs: a conv's path (ip_conv_path; "direct" for the
 * direct kernel of first layers), a norm's fusion, else its kind. */
static const char *op_path(const ip_model *m, int i, int n) {
    const ip_op *op = &m->ops[i];
    if (op->kind == IP_OP_CONV) {
        ip_conv_shape cs = op->conv;
        cs.n = n;
        return conv2d_direct_applicable(&cs) ? "direct" : ip_conv_path(&cs);
    }
    if (op->kind == IP_OP_NORM && i + 1 < m->nops && m->op_seconds[i + 1] == 0 && m->op_seconds[m->nops + i + 1] == 0)
        /* norm + affine (+ ReLU, + pool) in one kernel: the affine's time is here */
        return op->norm.groups > 0 ? "gn-tail" : "bn-tail";
    return op_kind_names[op->kind];
}

/* --profile: `steps` more training steps with per-op timers (a separate pass,
 * so the timers do not perturb the figures of the bench=train line), then one
 * key=value line per op (bench=layer) and per (kind, path) (bench=layers):
 * milliseconds per step forward and backward, GFLOP/s (backward counted as 2x
 * forward, as `gflops` of bench=train) and the share of the step. */
static int print_profile(ip_model *m, const float *x, const int32_t *y, int batch, int steps) {
    m->op_seconds = calloc(2 * (size_t)m->nops, sizeof *m->op_seconds);
    if (!m->op_seconds) return -1;
    for (int s = 0; s < steps; s++) {
        ip_model_zero_grad(m);
        const float *logits = ip_model_forward(m, x, batch, 1);
        xent_forward_backward(m->dlogits, logits, y, batch, 10, 1.f, NULL);
        ip_model_backward(m, m->dlogits, NULL);
    }
    double total = 0;
    for (int i = 0; i < 2 * m->nops; i++) total += m->op_seconds[i];
    /* per (kind, path) totals, in order of first appearance */
    const char *groups[IP_MAX_OPS];
    double gf[IP_MAX_OPS] = {0}, gb[IP_MAX_OPS] = {0}, gfl[IP_MAX_OPS] = {0};
    int ng = 0;
    for (int i = 0; i < m->nops; i++) {
        double f = m->op_seconds[i] / steps, b = m->op_seconds[m->nops + i] / steps;
        if (f == 0 && b == 0) continue; /* fused into the op before it */
        const ip_op *op = &m->ops[i];
        const char *path = op_path(m, i, batch);
        double fl = op_flops(m, i, batch);
        printf("bench=layer arch=%s op=%s kind=%s path=%s", m->cfg.arch, op->name, op_kind_names[op->kind], path);
        if (op->kind == IP_OP_CONV)
            printf(" in=%dx%dx%d out=%dx%dx%d k=%d stride=%d", op->conv.cin, op->conv.h, op->conv.w, op->conv.cout,
                   op->conv.oh, op->conv.ow, op->conv.kh, op->conv.stride);
        else
            printf(" out=%dx%dx%d", op->c, op->h, op->w);
        printf(" fwd_ms=%.3f bwd_ms=%.3f", 1e3 * f, 1e3 * b);
        if (fl > 0) printf(" fwd_gflops=%.1f bwd_gflops=%.1f", f > 0 ? fl / f / 1e9 : 0, b > 0 ? 2 * fl / b / 1e9 : 0);
        printf(" share_pct=%.1f\n", 100 * (f + b) * steps / total);
        int g = 0;
        while (g < ng && strcmp(groups[g], path) != 0) g++;
        if (g == ng) groups[ng++] = path;
        gf[g] += f, gb[g] += b, gfl[g] += fl;
    }
    for (int g = 0; g < ng; g++) {
        printf("bench=layers arch=%s path=%s fwd_ms=%.3f bwd_ms=%.3f", m->cfg.arch, groups[g], 1e3 * gf[g], 1e3 * gb[g]);
        if (gfl[g] > 0) printf(" gflops=%.1f", 3 * gfl[g] / (gf[g] + gb[g]) / 1e9);
        printf(" share_pct=%.1f\n", 100 * (gf[g] + gb[g]) * steps / total);
    }
    free(m->op_seconds);
    m->op_seconds = NULL;
    return 0;
}

/* the input of cfg->arch as torch_anchor.py has it (small-p*: 1x28x28, else 3x32x32), 10 classes */
static void input_shape(ip_model_cfg *cfg) {
    int small = strncmp(cfg->arch, "small-p", 7) == 0;
    cfg->in_c = small ? 1 : 3;
    cfg->in_h = cfg->in_w = small ? 28 : 32;
    cfg->classes = 10;
}

int rn_bench_rig_init(rn_bench_rig *r, ip_model_cfg *cfg, int batch, ip_err *e) {
    memset(r, 0, sizeof *r);
    input_shape(cfg);
    if (ip_model_build(&r->m, cfg, e)) return -1;
    r->batch = batch;
    if (ip_model_init(&r->m, 1, NULL, e) || ip_model_plan(&r->m, batch, e) || ip_model_plan_backward(&r->m, e)) {
        ip_model_free(&r->m);
        return -1;
    }
    const size_t sample = (size_t)cfg->in_c * cfg->in_h * cfg->in_w;
    r->x = malloc((size_t)batch * sample * sizeof *r->x);
    r->y = malloc((size_t)batch * sizeof *r->y);
    ip_optim_cfg oc;
    ip_optim_defaults(&oc, IP_OPT_SGD);
    if (!r->x || !r->y || ip_optim_init(&r->opt, &oc, r->m.nparams, e)) {
        free(r->x), free(r->y), ip_model_free(&r->m);
        return ip_fail(e, "out of memory");
    }
    /* N(0, 1) inputs and labels < 10, the same every time */
    ip_rng g;
    ip_rng_init(&g, 1, ip_stream("bench", 1));
    for (size_t i = 0; i < (size_t)batch * sample; i++) r->x[i] = ip_rng_normal(&g);
    for (int i = 0; i < batch; i++) r->y[i] = (int32_t)ip_rng_below(&g, 10);
    r->m.sign_loss_scale = r->m.npassports ? 1.f : 0.f;
    return 0;
}

void rn_bench_rig_free(rn_bench_rig *r) {
    ip_optim_free(&r->opt);
    ip_model_free(&r->m);
    free(r->x), free(r->y);
}

double rn_bench_time_steps(rn_bench_rig *r, int warmup, int steps) {
    ip_model *m = &r->m;
    double t = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = ip_now_s();
        ip_model_zero_grad(m);
        const float *logits = ip_model_forward(m, r->x, r->batch, 1);
        xent_forward_backward(m->dlogits, logits, r->y, r->batch, 10, 1.f, NULL);
        ip_model_backward(m, m->dlogits, NULL);
        ip_optim_step(&r->opt, m, 0.01f);
        if (s >= warmup) t += ip_now_s() - t0;
    }
    return t;
}

double rn_bench_time_infer(rn_bench_rig *r, int warmup, int steps) {
    double t = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = ip_now_s();
        ip_model_infer(&r->m, r->x, r->batch);
        if (s >= warmup) t += ip_now_s() - t0;
    }
    return t;
}

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
        {"profile", CLI_FLAG, &profile, 0, NULL, "also print every op's time and GFLOP/s, and totals per kind (bench=layer, bench=layers lines)"},
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
    int nt = ip_set_threads(threads);
    rn_bench_rig r;
    ip_err e = {{0}};
    if (rn_bench_rig_init(&r, &cfg, batch, &e) != 0) {
        fprintf(stderr, "ipsweep bench train: %s\n", e.msg);
        return 1;
    }
    double t_train = rn_bench_time_steps(&r, warmup, steps);
    if (profile && print_profile(&r.m, r.x, r.y, batch, steps) != 0)
        return fprintf(stderr, "ipsweep bench: out of memory\n"), 1;
    double t_inf = rn_bench_time_infer(&r, warmup, steps);
    double fwd = ip_model_flops_per_sample(&r.m);
    double train_ips = batch * steps / t_train, infer_ips = batch * steps / t_inf;
    printf("bench=train arch=%s scheme=%s norm=%s conv=%s threads=%d batch=%d steps=%d train_step_ms=%.2f "
           "train_img_per_s=%.1f infer_img_per_s=%.1f gflops=%.1f infer_gflops=%.1f fwd_mflop_per_img=%.1f "
           "peak_rss_mb=%.1f\n",
           cfg.arch, ip_scheme_name(cfg.scheme), ip_norm_name(cfg.norm), ip_conv_algo_name(cfg.conv), nt, batch, steps, 1e3 * t_train / steps,
           train_ips, infer_ips, 3 * fwd * train_ips / 1e9, fwd * infer_ips / 1e9, fwd / 1e6, ip_peak_rss_mb());
    rn_bench_rig_free(&r);
    return 0;
}
