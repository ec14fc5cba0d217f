/* Task kinds fake1 and verify (core/forge.h, docs/passports.md). Their
 * benchmark, `ipsweep bench forge`, is runner/bench/forge.c.
 *
 * Wiring (done elsewhere): kinds.c lists &rn_kind_fake1 and &rn_kind_verify
 * in rn_kinds[]. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../core/forge.h"
#include "../core/passport_keys.h"
#include "kinds.h"

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
