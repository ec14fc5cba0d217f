/* `ipsweep bench forge`: fake-passport evaluations per second (core/passport/forge.h;
 * the task kinds fake1 and verify: core/tasks/forge.c), on an untrained v1
 * model with random inputs or on a checkpoint with real test images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../core/io/ckpt.h"
#include "../../core/io/data.h"
#include "../../core/passport/forge.h"
#include "../../core/util/par.h"
#include "../../core/passport/passport_keys.h"
#include "../../core/util/proc.h"
#include "../../core/util/rng.h"
#include "../../core/model/train.h"
#include "../cli/cli.h"
#include "bench.h"

int rn_forge_rig_init(rn_forge_rig *r, const char *arch, const char *norm, int images, ip_err *e) {
    memset(r, 0, sizeof *r);
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    if (ip_norm_parse(norm, &cfg.norm) != 0) return ip_fail(e, "bad norm \"%s\"", norm);
    cfg.scheme = IP_SCHEME_V1;
    int small = strncmp(arch, "small-p", 7) == 0;
    cfg.in_c = small ? 1 : 3;
    cfg.in_h = cfg.in_w = small ? 28 : 32;
    cfg.classes = 10;
    if (ip_model_build(&r->m, &cfg, e) != 0) return -1;
    if (ip_model_init(&r->m, 1, NULL, e) != 0) {
        ip_model_free(&r->m);
        return -1;
    }
    ip_dataset *d = &r->d;
    d->n = (size_t)images, d->c = cfg.in_c, d->h = cfg.in_h, d->w = cfg.in_w, d->classes = 10;
    size_t sample = (size_t)d->c * d->h * d->w;
    d->x = malloc(d->n * sample * sizeof *d->x);
    d->y = malloc(d->n * sizeof *d->y);
    if (!d->x || !d->y) {
        rn_forge_rig_free(r);
        return ip_fail(e, "out of memory");
    }
    ip_rng g;
    ip_rng_init(&g, 1, ip_stream("bench-forge", 0));
    for (size_t i = 0; i < d->n * sample; i++) d->x[i] = ip_rng_normal(&g);
    for (size_t i = 0; i < d->n; i++) d->y[i] = (int32_t)ip_rng_below(&g, 10);
    for (int ch = 0; ch < 4; ch++) d->std[ch] = 1.f;
    return 0;
}

void rn_forge_rig_free(rn_forge_rig *r) {
    ip_forge_result_free(&r->res);
    ip_keygen_free(&r->kg);
    ip_forge_free(r->f);
    r->f = NULL;
    ip_model_free(&r->m);
    ip_data_free(&r->d);
}

int rn_bench_forge(int argc, char **argv) {
    char arch[32] = "small-p", mode[16] = "full", norm[8] = "bn", model_path[1024] = "", data[1024] = "";
    int passports = 64, eval_images = 256, threads = 0, group = 0, chunk = 0, vbatch = 0;
    char vbatch_help[80];
    snprintf(vbatch_help, sizeof vbatch_help, "auto group target of virtual samples (default %d)",
             IP_FORGE_VIRTUAL_BATCH_DEFAULT);
    cli_opt opts[] = {
        {"arch", CLI_STR, arch, sizeof arch, "NAME", "small-p (1x28x28) | alexnet-p (3x32x32) | ... (default small-p)"},
        {"norm", CLI_STR, norm, sizeof norm, "bn|gn", "normalisation of the untrained model (default bn)"},
        {"passports", CLI_INT, &passports, 0, "N", "fake passports (default 64)"},
        {"eval-images", CLI_INT, &eval_images, 0, "E", "evaluation images per passport (default 256)"},
        {"mode", CLI_STR, mode, sizeof mode, "full|screen", "evaluation mode (default full)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores)"},
        {"group", CLI_INT, &group, 0, "G", "passports per pass (default auto)"},
        {"chunk", CLI_INT, &chunk, 0, "N", "images per chunk (default auto)"},
        {"virtual-batch", CLI_INT, &vbatch, 0, "N", vbatch_help},
        {"model", CLI_STR, model_path, sizeof model_path, "FILE.h5", "a trained checkpoint instead of an untrained v1 model"},
        {"data", CLI_STR, data, sizeof data, "SRC", "with --model: evaluation images from this source's test split"},
    };
    cli_cmd c = {"bench forge",
                 "ipsweep bench forge [--arch small-p|alexnet-p] [--passports N] [--eval-images E] [--threads N] "
                 "[--mode full|screen]",
                 "Times fake-passport evaluation (random keys) on an untrained v1 model with random inputs\n"
                 "(the shapes torch_anchor.py forge uses), or on --model with --data, and prints passports_per_s.",
                 opts, (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    ip_forge_cfg fc;
    ip_forge_defaults(&fc);
    if (ip_forge_mode_parse(mode, &fc.mode) != 0) return cli_error("bench forge", "bad --mode \"%s\"", mode);
    if (passports < 1 || eval_images < 1 || group < 0 || chunk < 0 || vbatch < 0)
        return cli_error("bench forge", "--passports and --eval-images must be positive");
    if (model_path[0] && !data[0]) return cli_error("bench forge", "--model needs --data");
    ip_norm_kind norm_kind;
    if (ip_norm_parse(norm, &norm_kind) != 0) return cli_error("bench forge", "bad --norm \"%s\"", norm);
    fc.group = group, fc.chunk = chunk, fc.virtual_batch = vbatch;
    int nt = threads;
    if (nt <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nt = cores > 0 ? (int)cores : 1;
    }
    ip_par_set_threads(nt);
    rn_forge_rig rig;
    memset(&rig, 0, sizeof rig);
    ip_model *const m = &rig.m;
    ip_dataset *const d = &rig.d;
    ip_err e = {{0}};
    if (model_path[0]) {
        if (ip_ckpt_open_model(m, model_path, &e) != 0 ||
            ip_data_load(d, data, IP_SPLIT_TEST, (size_t)eval_images, &e) != 0 || ip_data_match_model(d, m, &e)) {
            fprintf(stderr, "ipsweep bench forge: %s\n", e.msg);
            return 1;
        }
        snprintf(arch, sizeof arch, "%s", m->cfg.arch);
        if (d->n < (size_t)eval_images) eval_images = (int)d->n;
    } else if (rn_forge_rig_init(&rig, arch, norm, eval_images, &e) != 0) {
        fprintf(stderr, "ipsweep bench forge: %s\n", e.msg);
        return 1;
    }
    ip_keygen *const kg = &rig.kg;
    ip_forge_result *const res = &rig.res;
    double real_acc = 0, real_det = 0;
    rc = 1;
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    int bad = ip_forge_create(&rig.f, m, d, (size_t)eval_images, &fc, &e) != 0;
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double plan_s = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
    if (bad || ip_keygen_init(kg, IP_KEY_RANDOM, m, NULL, NULL, 7, &e) != 0 ||
        ip_forge_real(rig.f, &real_acc, &real_det, NULL, &e) != 0 ||
        ip_forge_result_alloc(res, (size_t)passports, &e) != 0 ||
        ip_forge_run(rig.f, ip_forge_keygen_fn, kg, 0, (size_t)passports, (uint64_t)passports, real_acc - fc.margin, res, &e) != 0) {
        fprintf(stderr, "ipsweep bench forge: %s\n", e.msg);
        goto done;
    }
    ip_forge_info info;
    ip_forge_get_info(rig.f, &info);
    int accepted = 0;
    double evsum = 0;
    for (int i = 0; i < passports; i++) {
        evsum += res->evaluated[i];
        accepted += res->evaluated[i] == eval_images &&
                    (double)res->correct[i] / eval_images >= real_acc - fc.margin - 1e-12;
    }
    printf("bench=forge arch=%s mode=%s threads=%d passports=%d eval_images=%d chunk=%d group=%d "
           "virtual_batch=%d cached=%d planned_mb=%.1f real_acc=%.4f accepted=%d mean_evaluated=%.1f "
           "plan_seconds=%.3f key_seconds=%.3f seconds=%.3f passports_per_s=%.2f passports_per_s_with_plan=%.2f "
           "img_per_s=%.0f peak_rss_mb=%.1f\n",
           arch, ip_forge_mode_name(fc.mode), nt, passports, eval_images, info.chunk, info.group, info.virtual_batch,
           info.cached, info.planned_mb, real_acc, accepted, evsum / passports, plan_s, res->key_seconds, res->seconds,
           passports / res->seconds, passports / (res->seconds + plan_s), res->samples / res->seconds, ip_peak_rss_mb());
    rc = 0;
done:
    rn_forge_rig_free(&rig);
    return rc;
}
