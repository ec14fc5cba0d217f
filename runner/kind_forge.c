/* Task kinds fake1 and verify (core/forge.h, docs/passports.md), and the
 * `ipsweep bench forge` benchmark.
 *
 * Wiring (done elsewhere): kinds.c lists &rn_kind_fake1 and &rn_kind_verify
 * in rn_kinds[]; cmd_bench.c dispatches "forge" to rn_bench_forge(). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../core/ckpt.h"
#include "../core/data.h"
#include "../core/forge.h"
#include "../core/par.h"
#include "../core/passport_keys.h"
#include "../core/rng.h"
#include "../core/train.h"
#include "cli.h"
#include "kinds.h"
#include "../core/proc.h"

/* ---------------- fake1 ---------------- */

static const rn_key fake1_keys[] = {
    {"model", RN_T_MODEL, NULL, 0, 0, NULL, "the attacked passport model (v1, or v2/v3: its private branch)"},
    {"key_type", RN_T_ENUM, "random", 0, 0, "random|image|shuffle", "how fake passports are made (REFERENCE.md 1)"},
    {"reference", RN_T_MODEL, "", 0, 0, NULL,
     "reference model for image/shuffle keys (normally the baseline); empty for random"},
    {"passports", RN_T_INT, "1000", 1, 1e6, NULL, "N: fake passports over all shards"},
    {"eval_images", RN_T_INT, "1000", 1, 1e6, NULL, "E: test images each passport is evaluated on"},
    {"mode", RN_T_ENUM, "full", 0, 0, "full|screen",
     "full: every passport on all E images; screen: stop a passport once it is surely rejected"},
    {"shards", RN_T_INT, "0", 0, RN_MAX_SHARDS, NULL,
     "split N into this many tasks run on different ranks and merged (0 = automatic: N / shard_size)"},
    {"shard_size", RN_T_INT, "2500", 1, 1e6, NULL, "automatic sharding: passports per shard (at most 64 shards)"},
    {"group", RN_T_INT, "0", 0, 4096, NULL, "passports evaluated together (0 = auto)"},
    {"delta", RN_T_FLOAT, "1e-6", 1e-300, 0.5, NULL, "screen: error probability per passport"},
    {"margin", RN_T_FLOAT, "0.03", 0, 1, NULL, "accepted when accuracy >= real accuracy - margin"},
    {"seed", RN_T_INT, "1", 0, 2147483647, NULL, "passport keys and image order (the same for every shard)"},
};

/* Rough seconds on one core. The task does not know the model's architecture:
 * the passport-dependent part of a forward is ~7 MFLOP for small-p and ~190 for
 * alexnet-p; take 30 MFLOP per passport and image at ~60 GFLOP/s (screen mode:
 * ~32 images per fake), plus loading and the shared prefix. */
static double fake1_seconds(double passports, double images, const char *mode) {
    double per = strcmp(mode, "screen") == 0 ? fmin(images, 32.0) : images;
    return passports * per * 30e6 / 60e9 + 0.5;
}

/* A task's part: "" = the whole task (not split), "all" = the merge of the
 * shards, else a shard index. */
static int is_merge(const rn_task *t) { return strcmp(rn_param_str(t, "shard"), "all") == 0; }
static int is_shard(const rn_task *t) { return rn_param_str(t, "shard")[0] && !is_merge(t); }

static double fake1_cost(const rn_task *t, const rn_ctx *c) {
    if (is_merge(t)) return 0.05 + 1e-6 * (double)rn_param_i(t, "passports");
    double images = (double)rn_param_i(t, "eval_images");
    double lim = c->test_limit ? (double)c->test_limit : 10000.0;
    if (images > lim) images = lim;
    double shards = is_shard(t) ? (double)rn_param_i(t, "shards") : 1;
    return fake1_seconds((double)rn_param_i(t, "passports") / shards, images, rn_param_str(t, "mode"));
}

static int fake1_shards(const rn_task *t) {
    long n = rn_param_i(t, "passports"), s = rn_param_i(t, "shards"), size = rn_param_i(t, "shard_size");
    if (s <= 0) s = size > 0 ? (n + size - 1) / size : 1;
    if (s > RN_MAX_SHARDS) s = RN_MAX_SHARDS;
    if (s > n) s = n;
    return s < 1 ? 1 : (int)s;
}

/* image and shuffle keys are made from activations of a reference model:
 * without one they cannot be made (docs/passports.md). */
static int fake1_check(const rn_task *t, const char **key, char *msg, size_t cap) {
    const char *kt = rn_param_str(t, "key_type");
    if (strcmp(kt, "random") == 0 || rn_param_str(t, "reference_path")[0]) return 0; /* set with `reference` */
    *key = "key_type";
    snprintf(msg, cap, "key_type %s needs `reference` (a model of the same architecture, e.g. the baseline)", kt);
    return -1;
}

static int fill_fake1(ip_fake1_task *ft, const rn_task *t, const rn_ctx *c, ip_err *e) {
    ip_fake1_task_defaults(ft);
    if (rn_copy_str(ft->model_path, sizeof ft->model_path, rn_param_str(t, "model_path"), "model path", e) ||
        rn_copy_str(ft->reference_path, sizeof ft->reference_path, rn_param_str(t, "reference_path"), "reference path", e) ||
        rn_copy_str(ft->data, sizeof ft->data, c->data_source, "data.source", e))
        return -1;
    if (ip_key_type_parse(rn_param_str(t, "key_type"), &ft->key_type) != 0) return ip_fail(e, "bad key_type");
    if (ip_forge_mode_parse(rn_param_str(t, "mode"), &ft->forge.mode) != 0) return ip_fail(e, "bad mode");
    const char *bad_key;
    char msg[200];
    if (fake1_check(t, &bad_key, msg, sizeof msg) != 0) return ip_fail(e, "%s", msg);
    ft->train_limit = c->train_limit;
    ft->test_limit = c->test_limit;
    ft->passports = (uint64_t)rn_param_i(t, "passports");
    ft->eval_images = (int)rn_param_i(t, "eval_images");
    ft->shard = is_shard(t) ? (int)rn_param_i(t, "shard") : 0;
    ft->shards = is_shard(t) ? (int)rn_param_i(t, "shards") : 1;
    ft->forge.group = (int)rn_param_i(t, "group");
    ft->forge.delta = rn_param_f(t, "delta");
    ft->forge.margin = rn_param_f(t, "margin");
    ft->seed = (uint64_t)rn_param_i(t, "seed");
    return 0;
}

/* Copies the scalars of src into out (a shard reports its arrays through its file only). */
static int copy_scalars(const ip_metrics *src, ip_metrics *out, ip_err *e) {
    for (int i = 0; i < src->nscalars; i++)
        if (ip_metrics_set(out, src->names[i], src->values[i], e) != 0) return -1;
    return 0;
}

/* The merge: reads every shard's metrics file, merges (core/forge.h), writes
 * the merged metrics with all per-passport arrays to this task's file. */
static int fake1_merge(const rn_task *t, ip_metrics *out, ip_err *e) {
    int S = (int)rn_param_i(t, "shards");
    if (S < 1 || S > RN_MAX_SHARDS) return ip_fail(e, "bad shards %d", S);
    ip_metrics *parts = calloc((size_t)S, sizeof *parts);
    if (!parts) return ip_fail(e, "out of memory");
    int rc = -1, loaded = 0;
    for (; loaded < S; loaded++) {
        char path[1100];
        if (rn_shard_path(path, sizeof path, t->checkpoint, loaded, S) != 0) {
            ip_fail(e, "shard path too long");
            goto done;
        }
        if (ip_metrics_load(&parts[loaded], path, e) != 0) goto done;
    }
    if (ip_fake1_merge(parts, S, out, e) != 0 || ip_metrics_save(out, t->checkpoint, e) != 0) goto done;
    rc = 0;
done:
    for (int i = 0; i < loaded; i++) ip_metrics_free(&parts[i]);
    free(parts);
    return rc;
}

static int fake1_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    if (is_merge(t)) return fake1_merge(t, out, e);
    ip_fake1_task ft;
    if (fill_fake1(&ft, t, c, e) != 0) return -1;
    if (ft.shard < 0 || ft.shard >= ft.shards) return ip_fail(e, "shard %d is not below shards %d", ft.shard, ft.shards);
    if (!is_shard(t)) return ip_task_fake1(&ft, out, e);
    ip_metrics mine;
    ip_metrics_init(&mine);
    int rc = ip_task_fake1(&ft, &mine, e) != 0 || ip_metrics_save(&mine, t->checkpoint, e) != 0 ||
             copy_scalars(&mine, out, e) != 0
                 ? -1
                 : 0;
    ip_metrics_free(&mine);
    return rc;
}

const rn_kind rn_kind_fake1 = {
    "fake1",
    "fake-passport attack: accuracy and signature detection of N forged passports (docs/passports.md)",
    fake1_keys,
    RN_NKEYS(fake1_keys),
    RN_OUT_NONE,
    fake1_cost,
    fake1_run,
    fake1_shards,
    fake1_check};

/* ---------------- verify ---------------- */

static const rn_key verify_keys[] = {
    {"model", RN_T_MODEL, NULL, 0, 0, NULL, "the model whose ownership is claimed"},
    {"claim", RN_T_MODEL, "", 0, 0, NULL,
     "model whose passport keys and signature are the claim (empty: the model's own = the true claim)"},
    {"key_type", RN_T_ENUM, "random", 0, 0, "random|image|shuffle", "fake passports of the null distribution"},
    {"reference", RN_T_MODEL, "", 0, 0, NULL, "reference model for image/shuffle fakes"},
    {"passports", RN_T_INT, "1000", 1, 1e6, NULL, "fakes in the null distribution (run by this task)"},
    {"eval_images", RN_T_INT, "1000", 1, 1e6, NULL, "test images for the claim and the fakes"},
    {"mode", RN_T_ENUM, "full", 0, 0, "full|screen", "how the fakes are evaluated (the claim: always full)"},
    {"group", RN_T_INT, "0", 0, 4096, NULL, "passports evaluated together (0 = auto)"},
    {"delta", RN_T_FLOAT, "1e-6", 1e-300, 0.5, NULL, "screen: error probability per passport"},
    {"margin", RN_T_FLOAT, "0.03", 0, 1, NULL, "claim_accepted when claim accuracy >= real accuracy - margin"},
    {"seed", RN_T_INT, "1", 0, 2147483647, NULL, "fake passport keys and image order"},
};

static double verify_cost(const rn_task *t, const rn_ctx *c) {
    double images = (double)rn_param_i(t, "eval_images");
    double lim = c->test_limit ? (double)c->test_limit : 10000.0;
    if (images > lim) images = lim;
    return fake1_seconds((double)rn_param_i(t, "passports") + 2, images, rn_param_str(t, "mode"));
}

static int verify_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    ip_verify_task vt;
    memset(&vt, 0, sizeof vt);
    if (fill_fake1(&vt.null, t, c, e) != 0) return -1;
    if (rn_copy_str(vt.claim_path, sizeof vt.claim_path, rn_param_str(t, "claim_path"), "claim path", e)) return -1;
    return ip_task_verify(&vt, out, e);
}

const rn_kind rn_kind_verify = {
    "verify",
    "ownership claim vs a fake1 null distribution run by the task: claim_acc, claim_detect, p_value",
    verify_keys,
    RN_NKEYS(verify_keys),
    0,
    verify_cost,
    verify_run,
    NULL,
    fake1_check};

/* ---------------- ipsweep bench forge ---------------- */

int rn_bench_forge(int argc, char **argv) {
    char arch[32] = "small-p", mode[16] = "full", norm[8] = "bn", model_path[1024] = "", data[1024] = "";
    int passports = 64, eval_images = 256, threads = 0, group = 0, chunk = 0, vbatch = 0;
    cli_opt opts[] = {
        {"arch", CLI_STR, arch, sizeof arch, "NAME", "small-p (1x28x28) | alexnet-p (3x32x32) | ... (default small-p)"},
        {"norm", CLI_STR, norm, sizeof norm, "bn|gn", "normalisation of the untrained model (default bn)"},
        {"passports", CLI_INT, &passports, 0, "N", "fake passports (default 64)"},
        {"eval-images", CLI_INT, &eval_images, 0, "E", "evaluation images per passport (default 256)"},
        {"mode", CLI_STR, mode, sizeof mode, "full|screen", "evaluation mode (default full)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores)"},
        {"group", CLI_INT, &group, 0, "G", "passports per pass (default auto)"},
        {"chunk", CLI_INT, &chunk, 0, "N", "images per chunk (default auto)"},
        {"virtual-batch", CLI_INT, &vbatch, 0, "N", "auto group target of virtual samples (default 512)"},
        {"model", CLI_STR, model_path, sizeof model_path, "FILE.h5", "a trained checkpoint instead of an untrained v1 model"},
        {"data", CLI_STR, data, sizeof data, "SRC", "with --model: evaluation images from this source's test split"},
    };
    cli_cmd c = {"bench forge",
                 "ipsweep bench forge [--arch small-p|alexnet-p] [--passports N] [--eval-images E] [--threads N] "
                 "[--mode full|screen]",
                 "Times fake-passport evaluation (random keys) on an untrained v1 model with random inputs\n"
                 "(the shapes torch_anchor.py forge uses), or on --model with --data, and prints passports_per_s.",
                 opts, RN_NKEYS(opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    ip_forge_cfg fc;
    ip_forge_defaults(&fc);
    if (ip_forge_mode_parse(mode, &fc.mode) != 0) return cli_error("bench forge", "bad --mode \"%s\"", mode);
    if (passports < 1 || eval_images < 1 || group < 0 || chunk < 0 || vbatch < 0)
        return cli_error("bench forge", "--passports and --eval-images must be positive");
    if (model_path[0] && !data[0]) return cli_error("bench forge", "--model needs --data");
    fc.group = group, fc.chunk = chunk, fc.virtual_batch = vbatch;
    int nt = threads;
    if (nt <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nt = cores > 0 ? (int)cores : 1;
    }
    ip_par_set_threads(nt);
    ip_model m;
    ip_dataset d;
    memset(&d, 0, sizeof d);
    ip_err e = {{0}};
    if (model_path[0]) {
        if (ip_ckpt_open_model(&m, model_path, &e) != 0 ||
            ip_data_load(&d, data, IP_SPLIT_TEST, (size_t)eval_images, &e) != 0 || ip_data_match_model(&d, &m, &e)) {
            fprintf(stderr, "ipsweep bench forge: %s\n", e.msg);
            return 1;
        }
        snprintf(arch, sizeof arch, "%s", m.cfg.arch);
        if (d.n < (size_t)eval_images) eval_images = (int)d.n;
    } else {
        ip_model_cfg cfg = {0};
        snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
        if (ip_norm_parse(norm, &cfg.norm) != 0) return cli_error("bench forge", "bad --norm");
        cfg.scheme = IP_SCHEME_V1;
        int small = strncmp(arch, "small-p", 7) == 0;
        cfg.in_c = small ? 1 : 3;
        cfg.in_h = cfg.in_w = small ? 28 : 32;
        cfg.classes = 10;
        if (ip_model_build(&m, &cfg, &e) != 0 || ip_model_init(&m, 1, NULL, &e) != 0) {
            fprintf(stderr, "ipsweep bench forge: %s\n", e.msg);
            return 1;
        }
        d.n = (size_t)eval_images, d.c = cfg.in_c, d.h = cfg.in_h, d.w = cfg.in_w, d.classes = 10;
        size_t sample = (size_t)d.c * d.h * d.w;
        d.x = malloc(d.n * sample * sizeof *d.x);
        d.y = malloc(d.n * sizeof *d.y);
        if (!d.x || !d.y) return fprintf(stderr, "ipsweep bench forge: out of memory\n"), 1;
        ip_rng r;
        ip_rng_init(&r, 1, ip_stream("bench-forge", 0));
        for (size_t i = 0; i < d.n * sample; i++) d.x[i] = ip_rng_normal(&r);
        for (size_t i = 0; i < d.n; i++) d.y[i] = (int32_t)ip_rng_below(&r, 10);
        for (int ch = 0; ch < 4; ch++) d.std[ch] = 1.f;
    }
    ip_forge *f = NULL;
    ip_keygen kg;
    memset(&kg, 0, sizeof kg);
    ip_forge_result res = {0};
    double real_acc = 0, real_det = 0;
    rc = 1;
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    int bad = ip_forge_create(&f, &m, &d, (size_t)eval_images, &fc, &e) != 0;
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double plan_s = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
    if (bad || ip_keygen_init(&kg, IP_KEY_RANDOM, &m, NULL, NULL, 7, &e) != 0 ||
        ip_forge_real(f, &real_acc, &real_det, NULL, &e) != 0 ||
        ip_forge_result_alloc(&res, (size_t)passports, &e) != 0 ||
        ip_forge_run(f, ip_forge_keygen_fn, &kg, 0, (size_t)passports, (uint64_t)passports, real_acc - fc.margin, &res, &e) != 0) {
        fprintf(stderr, "ipsweep bench forge: %s\n", e.msg);
        goto done;
    }
    ip_forge_info info;
    ip_forge_get_info(f, &info);
    int accepted = 0;
    double evsum = 0;
    for (int i = 0; i < passports; i++) {
        evsum += res.evaluated[i];
        accepted += res.evaluated[i] == eval_images &&
                    (double)res.correct[i] / eval_images >= real_acc - fc.margin - 1e-12;
    }
    printf("bench=forge arch=%s mode=%s threads=%d passports=%d eval_images=%d chunk=%d group=%d "
           "virtual_batch=%d cached=%d planned_mb=%.1f real_acc=%.4f accepted=%d mean_evaluated=%.1f "
           "plan_seconds=%.3f key_seconds=%.3f seconds=%.3f passports_per_s=%.2f passports_per_s_with_plan=%.2f "
           "img_per_s=%.0f peak_rss_mb=%.1f\n",
           arch, ip_forge_mode_name(fc.mode), nt, passports, eval_images, info.chunk, info.group, info.virtual_batch,
           info.cached, info.planned_mb, real_acc, accepted, evsum / passports, plan_s, res.key_seconds, res.seconds,
           passports / res.seconds, passports / (res.seconds + plan_s), res.samples / res.seconds, ip_peak_rss_mb());
    rc = 0;
done:
    ip_forge_result_free(&res);
    ip_keygen_free(&kg);
    ip_forge_free(f);
    ip_model_free(&m);
    ip_data_free(&d);
    return rc;
}
