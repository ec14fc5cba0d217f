/* The fake-passport kinds fake1 and verify as the runner schedules them:
 * costs, and fake1's split into shards run on different ranks and merged.
 * Their keys: core/tasks/forge.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/passport/forge.h"
#include "../../core/passport/passport_keys.h" /* IP_SHUFFLE_IMAGES, ip_keygen_caches */
#include "cost.h"
#include "../../core/tasks/tasks.h"

/* Seconds on one core. A fake is evaluated on its images (screen mode: ~32,
 * a first look at 16 and a second at 32 reject most) through the forger at
 * the architecture's forger speed (rn_forge_seconds). image and shuffle keys are made
 * from images through the reference model as far as the last passport
 * layer's input: 2 and 2 x IP_SHUFFLE_IMAGES images per fake, each the
 * key_mflop / mflop share of an evaluation image (core/passport/passport_keys.c);
 * with the feature cache (shuffle keys, when ip_keygen_caches says so) the
 * key pool once per shard instead.
 * Plus loading and the shared prefix. */
static double fake1_seconds(double passports, double images, const rn_task *t, const rn_ctx *c) {
    const char *mode = rn_val_text(t, "mode"), *keys = rn_val_text(t, "key_type");
    const char *arch = rn_model_arch(t, c, "model");
    const rn_arch_speed *row = rn_arch(arch);
    double per = strcmp(mode, "screen") == 0 ? fmin(images, 32.0) : images;
    int shuffle = strcmp(keys, "shuffle") == 0;
    double key_images = passports * (strcmp(keys, "image") == 0 ? 2 : shuffle ? 2 * IP_SHUFFLE_IMAGES : 0);
    /* the pool: deepipr-code draws from the test split with a train-mode reference (never cached) */
    int code = strcmp(rn_val_text(t, "protocol"), "deepipr-code") == 0;
    double pool = rn_data_images(c, 1);
    if (shuffle && ip_keygen_caches(IP_KEY_SHUFFLE, code, (size_t)row->key_floats, (size_t)pool))
        key_images = pool;
    double key_share = row->key_mflop / row->mflop;
    return rn_forge_seconds(arch, passports * per) + rn_infer_seconds(arch, key_images * key_share) +
           RN_TASK_FIXED_SECONDS;
}

static double eval_images(const rn_task *t, const rn_ctx *c) {
    double images = (double)rn_val_i(t, "eval_images");
    double lim = rn_data_images(c, 0);
    return images > lim ? lim : images;
}

static double fake1_cost(const rn_task *t, const rn_ctx *c) {
    if (t->shard == RN_MERGE) return 0.05 + 1e-6 * (double)rn_val_i(t, "passports");
    double shards = t->shard >= 0 ? (double)t->shards : 1;
    return fake1_seconds((double)rn_val_i(t, "passports") / shards, eval_images(t, c), t, c);
}

/* A step, for when a shard checkpoints between groups of passports: one
 * group (`group`, or the automatic one: IP_FORGE_VIRTUAL_BATCH_DEFAULT passport-images per pass,
 * core/passport/forge.h). A merge is one step. */
/* A step is a GEMM block of passports: the unit fake1 and verify save at (core/tasks/forge.c). */
static double block_step_cost(double passports, const rn_task *t, const rn_ctx *c) {
    return fake1_seconds(fmin(passports, IP_FORGE_BLOCK_DEFAULT), eval_images(t, c), t, c);
}

static double fake1_step_cost(const rn_task *t, const rn_ctx *c) {
    if (t->shard == RN_MERGE) return fake1_cost(t, c);
    double shards = t->shard >= 0 ? (double)t->shards : 1;
    return block_step_cost(ceil((double)rn_val_i(t, "passports") / shards), t, c);
}

static double verify_step_cost(const rn_task *t, const rn_ctx *c) {
    return block_step_cost((double)rn_val_i(t, "passports"), t, c);
}

static int fake1_shards(const rn_task *t) {
    long n = rn_val_i(t, "passports"), s = rn_val_i(t, "shards"), size = rn_val_i(t, "shard_size");
    if (s <= 0) s = size > 0 ? (n + size - 1) / size : 1;
    if (s > RN_MAX_SHARDS) s = RN_MAX_SHARDS;
    if (s > n) s = n;
    return s < 1 ? 1 : (int)s;
}

/* Copies the scalars of src into out (a shard reports its arrays through its file only). */
static int copy_scalars(const ip_metrics *src, ip_metrics *out, ip_err *e) {
    for (int i = 0; i < src->nscalars; i++)
        if (ip_metrics_set(out, src->names[i], src->values[i], e) != 0) return -1;
    return 0;
}

/* The merge: reads every shard's metrics file, merges (core/passport/forge.h), writes
 * the merged metrics with all per-passport arrays to this task's file. */
static int fake1_merge(const rn_task *t, ip_metrics *out, ip_err *e) {
    int S = t->shards;
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

/* A whole task runs the core's fake1; a shard runs its part of the passports
 * and leaves its metrics in its file for the merge. */
static int fake1_run(const rn_task *t, void *task, ip_metrics *out, ip_err *e) {
    if (t->shard == RN_MERGE) return fake1_merge(t, out, e);
    ip_fake1_task *ft = task;
    if (t->shard == RN_NOT_SPLIT) return ip_task_fake1(ft, out, e);
    /* shard/shards were placed by the fill (ip_fake1_def.at_shard), so the shard's state file is its own */
    if (ft->shard < 0 || ft->shard >= ft->shards) return ip_fail(e, "shard %d is not below shards %d", ft->shard, ft->shards);
    ip_metrics mine;
    ip_metrics_init(&mine);
    int rc = ip_task_fake1(ft, &mine, e) != 0 || ip_metrics_save(&mine, t->checkpoint, e) != 0 ||
                     copy_scalars(&mine, out, e) != 0
                 ? -1
                 : 0;
    ip_metrics_free(&mine);
    return rc;
}

static double verify_cost(const rn_task *t, const rn_ctx *c) {
    return fake1_seconds((double)rn_val_i(t, "passports") + 2, eval_images(t, c), t, c);
}

const rn_kind rn_kind_fake1 = {&ip_fake1_def, RN_OUT_NONE, fake1_cost, fake1_shards, fake1_run, fake1_step_cost};
const rn_kind rn_kind_verify = {&ip_verify_def, RN_OUT_NONE, verify_cost, NULL, NULL, verify_step_cost};
