/* The fake-passport kinds fake1 and verify (docs/passports.md): their
 * parameter tables, the rule across keys, and their task code on the forge
 * engine (core/passport/forge.h). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/cache.h"
#include "../io/ckpt.h"
#include "../model/train.h"
#include "../passport/forge.h"
#include "../passport/passport_keys.h"
#include "../util/proc.h"
#include "../util/rng.h"
#include "param.h"
#include "tasks.h"

#define MAX_SHARDS_DOC "split N into this many tasks run on different ranks and merged (0 = automatic: N / shard_size)"

/* ---------------- fake1 ---------------- */

#define T ip_fake1_task
static const ip_param fake1_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the attacked passport model (v1, or v2/v3: its private branch)"),
    P_ENUM(T, "key_type", key_type, "random", "random|image|shuffle", NULL, "how fake passports are made (REFERENCE.md 1)"),
    P_REF(T, "reference", IP_P_MODEL, reference_path, "",
          "reference model for image/shuffle keys (normally the baseline); empty for random"),
    P_INT(T, "passports", IP_F_U64, passports, 1000, 1, 1e6, "N: fake passports over all shards"),
    P_INT(T, "eval_images", IP_F_INT, eval_images, 1000, 1, 1e6, "E: test images each passport is evaluated on"),
    P_ENUM(T, "mode", forge.mode, "full", "full|screen", NULL,
           "full: every passport on all E images; screen: stop a passport once it is surely rejected"),
    /* how the runner splits the task (runner/kinds/forge.c): not the struct's shard/shards */
    P_NAME_INT("shards", 0, 0, 64, MAX_SHARDS_DOC),
    P_NAME_INT("shard_size", 2500, 1, 1e6, "automatic sharding: passports per shard (at most 64 shards)"),
    P_INT(T, "group", IP_F_INT, forge.group, 0, 0, 4096, "passports evaluated together (0 = auto)"),
    P_FLOAT(T, "delta", IP_F_DOUBLE, forge.delta, 1e-6, 1e-300, 0.5, "screen: error probability per passport"),
    P_FLOAT(T, "margin", IP_F_DOUBLE, forge.margin, 0.03, 0, 1, "accepted when accuracy >= real accuracy - margin"),
    /* 0.9: a verifier that tolerates 10% wrong signature bits (a sign flip of 10% keeps ~0.9, docs/attacks.md) */
    P_FLOAT(T, "detect_threshold", IP_F_DOUBLE, forge.detect_threshold, 0.9, 0, 1,
            "joint criterion: a fake also needs signature detection >= this (accept_joint_frac)"),
    P_INT(T, "seed", IP_F_U64, seed, 1, 0, 2147483647, "passport keys and image order (the same for every shard)"),
    P_PROTOCOL(T, protocol),
};
_Static_assert(IP_KEY_RANDOM == 0 && IP_KEY_IMAGE == 1 && IP_KEY_SHUFFLE == 2, "choices in enum order");
_Static_assert(IP_FORGE_FULL == 0 && IP_FORGE_SCREEN == 1, "choices in enum order");

/* what no key sets: one part (the runner sets shard/shards of a split task), the per-passport arrays kept */
static void fake1_init(void *p) {
    T *t = p;
    ip_forge_defaults(&t->forge);
    t->shards = 1;
    t->keep_arrays = 1;
}

/* image and shuffle keys are made from activations of a reference model:
 * without one they cannot be made (docs/passports.md); under deepipr-code
 * the reference is the authors' randomly initialised network, made by the
 * task (so none may be named). */
static int fake1_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    (void)shape;
    const T *t = p;
    if (t->protocol == IP_PROTOCOL_DEEPIPR_CODE) {
        if (!t->reference_path[0]) return 0;
        *key = "reference";
        snprintf(msg, cap, "under protocol deepipr-code the reference is a randomly initialised network of the "
                           "attacked architecture, as in the authors' code: leave `reference` out");
        return -1;
    }
    if (t->key_type == IP_KEY_RANDOM || t->reference_path[0]) return 0;
    *key = "key_type";
    snprintf(msg, cap, "key_type %s needs `reference` (a model of the same architecture, e.g. the baseline)",
             t->key_type == IP_KEY_IMAGE ? "image" : "shuffle");
    return -1;
}

static int fake1_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fake1(t, out, e); }
const ip_task_def ip_fake1_def = {
    .name = "fake1",
    .doc = "fake-passport attack: accuracy and signature detection of N forged passports (docs/passports.md)",
    IP_ROWS(fake1_params),
    .size = sizeof(T),
    .init = fake1_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_resume = IP_AT(T, resume),
    .at_shard = {IP_AT(T, shard), IP_AT(T, shards)},
    .check = fake1_check,
    .run = fake1_run,
};
#undef T

/* ---------------- verify ---------------- */

#define T ip_verify_task
static const ip_param verify_params[] = {
    P_REF(T, "model", IP_P_MODEL, null.model_path, NULL, "the model whose ownership is claimed"),
    P_REF(T, "claim", IP_P_MODEL, claim_path, "",
          "model whose passport keys and signature are the claim (empty: the model's own = the true claim)"),
    P_ENUM(T, "key_type", null.key_type, "random", "random|image|shuffle", NULL, "fake passports of the null distribution"),
    P_REF(T, "reference", IP_P_MODEL, null.reference_path, "", "reference model for image/shuffle fakes"),
    P_INT(T, "passports", IP_F_U64, null.passports, 1000, 1, 1e6, "fakes in the null distribution (run by this task)"),
    P_INT(T, "eval_images", IP_F_INT, null.eval_images, 1000, 1, 1e6, "test images for the claim and the fakes"),
    P_ENUM(T, "mode", null.forge.mode, "full", "full|screen", NULL, "how the fakes are evaluated (the claim: always full)"),
    P_INT(T, "group", IP_F_INT, null.forge.group, 0, 0, 4096, "passports evaluated together (0 = auto)"),
    P_FLOAT(T, "delta", IP_F_DOUBLE, null.forge.delta, 1e-6, 1e-300, 0.5, "screen: error probability per passport"),
    P_FLOAT(T, "margin", IP_F_DOUBLE, null.forge.margin, 0.03, 0, 1,
            "claim_accepted when claim accuracy >= real accuracy - margin"),
    P_INT(T, "seed", IP_F_U64, null.seed, 1, 0, 2147483647, "fake passport keys and image order"),
};

static void verify_init(void *p) { fake1_init(&((T *)p)->null); }
static int verify_check(const void *p, const ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    return fake1_check(&((const T *)p)->null, shape, key, msg, cap);
}
static int verify_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_verify(t, out, e); }
const ip_task_def ip_verify_def = {
    .name = "verify",
    .doc = "ownership claim vs a fake1 null distribution run by the task: claim_acc, claim_detect, p_value",
    IP_ROWS(verify_params),
    .size = sizeof(T),
    .init = verify_init,
    .at_data = IP_AT(T, null.data),
    .at_train_limit = IP_AT(T, null.train_limit),
    .at_test_limit = IP_AT(T, null.test_limit),
    .at_resume = IP_AT(T, null.resume), /* its null distribution checkpoints like fake1 */
    .check = verify_check,
    .run = verify_run,
};
#undef T

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------- */
/* Task code                                                                 */

void ip_fake1_task_defaults(ip_fake1_task *t) { ip_task_defaults(&ip_fake1_def, t); }

/* The attacked model, its evaluation images, the key generator (and what it needs). */
typedef struct fake1_env {
    ip_model m, ref;
    int have_ref;
    ip_dataset test, train;
    ip_keygen kg;
    int have_kg;
    double cache_seconds;  /* filling the key generator's feature cache (key time) */
    ip_forge *f;
} fake1_env;

static void env_free(fake1_env *v) {
    ip_forge_free(v->f);
    if (v->have_kg) ip_keygen_free(&v->kg);
    ip_model_free(&v->m);
    if (v->have_ref) ip_model_free(&v->ref);
    ip_data_free(&v->test);
    ip_data_free(&v->train);
}

static int env_open(fake1_env *v, const ip_fake1_task *t, int need_keys, ip_err *e) {
    memset(v, 0, sizeof *v);
    if (ip_task_open(&v->m, &v->test, t->model_path, t->data, t->test_limit, e) != 0) return -1;
    if (v->m.npassports == 0)
        return ip_fail(e, "%s: the model (scheme %s) has no passport layers", t->model_path,
                       ip_scheme_name(v->m.cfg.scheme));
    if (t->eval_images < 1) return ip_fail(e, "eval_images must be positive");
    size_t E = (size_t)t->eval_images < v->test.n ? (size_t)t->eval_images : v->test.n;
    int code = t->protocol == IP_PROTOCOL_DEEPIPR_CODE;
    if (need_keys && t->key_type != IP_KEY_RANDOM && code) {
        /* the authors' reference: their "pretrained" network of the attacked architecture, which for a
         * dataset other than ImageNet is randomly initialised; keys from test images in train mode */
        ip_model_cfg rcfg = v->m.cfg;
        rcfg.scheme = IP_SCHEME_BASELINE;
        snprintf(rcfg.passport_layers, sizeof rcfg.passport_layers, "none");
        if (ip_model_build(&v->ref, &rcfg, e) != 0) return -1;
        v->have_ref = 1;
        if (ip_model_init(&v->ref, t->seed ^ ip_stream("fake1-reference", 0), NULL, e) != 0) return -1;
        if (ip_cache_data_load(&v->train, t->data, IP_SPLIT_TEST, t->test_limit, e) != 0) return -1;
        if (ip_data_match_model(&v->train, &v->ref, e) != 0) return -1;
    } else if (need_keys && t->key_type != IP_KEY_RANDOM) {
        if (!t->reference_path[0])
            return ip_fail(e, "key type %s needs a reference model (key `reference`)", ip_key_type_name(t->key_type));
        if (ip_cache_open_model(&v->ref, t->reference_path, e) != 0) return -1;
        v->have_ref = 1;
        if (strcmp(v->ref.cfg.arch, v->m.cfg.arch) != 0)
            return ip_fail(e, "the reference model is a %s, the attacked model a %s", v->ref.cfg.arch, v->m.cfg.arch);
        if (ip_cache_data_load(&v->train, t->data, IP_SPLIT_TRAIN, t->train_limit, e) != 0) return -1;
        if (ip_data_match_model(&v->train, &v->ref, e) != 0) return -1;
    }
    if (need_keys) {
        if (ip_keygen_init(&v->kg, t->key_type, &v->m, v->have_ref ? &v->ref : NULL, &v->train, t->seed, e) != 0)
            return -1;
        v->have_kg = 1;
        v->kg.ref_training = code;
        double t0 = ip_now_s();
        if (ip_keygen_cache_features(&v->kg, e) != 0) return -1;
        v->cache_seconds = ip_now_s() - t0;
    }
    ip_forge_cfg fc = t->forge;
    fc.order_seed = t->seed;
    return ip_forge_create(&v->f, &v->m, &v->test, E, &fc, e);
}

static int set_all(ip_metrics *out, ip_err *e, const char *const *names, const double *vals, int n) {
    for (int i = 0; i < n; i++)
        if (ip_metrics_set(out, names[i], vals[i], e) != 0) return -1;
    return 0;
}

/* Pearson correlation of x and y (NaN when either is constant). */
static double correlation(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    for (size_t i = 0; i < n; i++)
        sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my), sxy += (x[i] - mx) * (y[i] - my);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

int ip_fake1_summarise(const double *acc, const double *det, const double *evd, size_t n, size_t E, double real_acc,
                       double real_det, double thr, double det_thr, int keep_arrays, ip_metrics *out, ip_err *e) {
    double *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) return ip_fail(e, "out of memory");
    double sum = 0, sum2 = 0, dsum = 0, dmax = n ? -INFINITY : NAN, evsum = 0;
    size_t accepted = 0, detected = 0, joint = 0;
    double hist[20] = {0};
    int screen = 0;
    for (size_t i = 0; i < n; i++) {
        sum += acc[i], sum2 += acc[i] * acc[i], dsum += det[i], evsum += evd[i];
        if (det[i] > dmax) dmax = det[i];
        screen |= (size_t)evd[i] != E;
        /* the acceptance rule: on all E images, within the margin; the joint one adds the signature */
        int a = (size_t)evd[i] == E && acc[i] >= thr - 1e-12, d = det[i] >= det_thr - 1e-12;
        accepted += a, detected += d, joint += a && d;
        int bin = (int)(acc[i] * 20);
        hist[bin < 0 ? 0 : bin > 19 ? 19 : bin] += 1;
    }
    memcpy(sorted, acc, n * sizeof *acc);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    double mean = n ? sum / n : NAN, var = n ? sum2 / n - mean * mean : NAN;
    /* the forgery tail: accuracies are correct counts over E images, a grid of step 1/E */
    ip_forge_tail tail;
    ip_forge_tail_estimate(sorted, n, accepted, thr, E ? 1.0 / (double)E : 0, screen, &tail);
    double dn = n ? (double)n : NAN;
    const char *names[] = {"real_acc",         "real_detect",        "threshold",         "fake_mean",
                           "fake_std",         "fake_min",           "fake_max",          "fake_q05",
                           "fake_q25",         "fake_q50",           "fake_q75",          "fake_q95",
                           "accepted",         "passports",          "eval_images",       "detect_mean",
                           "detect_max",       "mean_evaluated",     "detect_threshold",  "accepted_joint",
                           "accept_acc_frac",  "accept_detect_frac", "accept_joint_frac", "acc_detect_corr",
                           "p_accept_est",     "p_accept_upper95",   "p_accept_gpd",      "p_accept_cp95",
                           "p_joint_cp95",     "tail_k",             "tail_u",            "tail_xi",
                           "tail_sigma"};
    double vals[] = {real_acc,
                     real_det,
                     thr,
                     mean,
                     n ? sqrt(var > 0 ? var : 0) : NAN,
                     n ? sorted[0] : NAN,
                     n ? sorted[n - 1] : NAN,
                     ip_forge_quantile(sorted, n, 0.05),
                     ip_forge_quantile(sorted, n, 0.25),
                     ip_forge_quantile(sorted, n, 0.50),
                     ip_forge_quantile(sorted, n, 0.75),
                     ip_forge_quantile(sorted, n, 0.95),
                     (double)accepted,
                     (double)n,
                     (double)E,
                     n ? dsum / n : NAN,
                     dmax,
                     n ? evsum / n : NAN,
                     det_thr,
                     (double)joint,
                     (double)accepted / dn,
                     (double)detected / dn,
                     (double)joint / dn,
                     n ? correlation(acc, det, n) : NAN,
                     tail.p_est,
                     tail.p_upper,
                     (double)tail.gpd,
                     tail.p_cp_upper,
                     ip_forge_cp_upper(joint, n, IP_TAIL_CONF),
                     (double)tail.k,
                     tail.u,
                     tail.xi,
                     tail.sigma};
    _Static_assert(sizeof names / sizeof *names == sizeof vals / sizeof *vals, "a name per value");
    free(sorted);
    if (set_all(out, e, names, vals, (int)(sizeof vals / sizeof *vals)) != 0) return -1;
    if (!keep_arrays) return 0;
    if (ip_metrics_set_array(out, "fake_acc", acc, n, e) != 0 || ip_metrics_set_array(out, "fake_detect", det, n, e) != 0 ||
        ip_metrics_set_array(out, "hist_counts", hist, 20, e) != 0)
        return -1;
    /* evaluated: only informative in screen mode (in full mode it is E everywhere) */
    return screen ? ip_metrics_set_array(out, "evaluated", evd, n, e) : 0;
}

/* Where a fake1 run is: part "fake1.pos" of the task state, saved at the
 * start of a GEMM block of passports, with the per-passport results of the
 * passports before it ("fake1.correct", "fake1.evaluated", "fake1.detect",
 * all `count` long). The results are a pure function of the passport's
 * index and block (forge.h), so the blocks after `next` give what they give
 * uninterrupted. */
typedef struct fake1_pos {
    uint64_t next;                /* the first passport not done */
    uint64_t first, count;        /* the range: must be this task's */
    int32_t block, pad;           /* passports per GEMM block of the plan that wrote it: must be this one's */
    double samples;               /* virtual samples so far */
    double key_seconds, eval_seconds; /* so far, over every run of the task */
} fake1_pos;

typedef struct fake1_save {
    ip_saver *sv;
    fake1_pos pos, before;        /* before: the times of earlier runs */
    size_t count;
    const ip_forge_result *r;     /* the results so far */
} fake1_save;

static int fake1_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    fake1_save *s = user;
    const ip_forge_result *r = s->r;
    if (ip_state_add(parts, n, "fake1.pos", &s->pos, sizeof s->pos) != 0 ||
        ip_state_add(parts, n, "fake1.correct", r->correct, s->count * sizeof *r->correct) != 0 ||
        ip_state_add(parts, n, "fake1.evaluated", r->evaluated, s->count * sizeof *r->evaluated) != 0 ||
        ip_state_add(parts, n, "fake1.detect", r->detect, s->count * sizeof *r->detect) != 0)
        return ip_fail(e, "too many state parts");
    return 0;
}

static int fake1_point(void *ctx, uint64_t next, const ip_forge_result *r, ip_err *e) {
    fake1_save *s = ctx;
    s->pos.next = next;
    s->pos.samples = r->samples;
    s->pos.key_seconds = s->before.key_seconds + r->key_seconds;
    s->pos.eval_seconds = s->before.eval_seconds + r->seconds;
    s->r = r;
    char where[96];
    snprintf(where, sizeof where, "passport %llu of %llu..%llu", (unsigned long long)next,
             (unsigned long long)s->pos.first, (unsigned long long)(s->pos.first + s->pos.count - 1));
    return ip_saver_point(s->sv, fake1_fill, s, where, e);
}

/* Restores the results of the passports done and where to go on. */
static int fake1_restore(fake1_save *s, ip_forge_result *r, int block, ip_err *e) {
    ip_saver *sv = s->sv;
    fake1_pos p;
    if (ip_state_get(&sv->loaded, sv->r.path, "fake1.pos", &p, sizeof p, e) != 0) return -1;
    if (p.first != s->pos.first || p.count != s->pos.count || p.block != block || p.next < p.first ||
        p.next > p.first + p.count)
        return ip_fail_input(e, "task state %s: passports %llu+%llu in blocks of %d, at %llu; this task is %llu+%llu "
                                "in blocks of %d: delete it to start the task over",
                             sv->r.path, (unsigned long long)p.first, (unsigned long long)p.count, (int)p.block,
                             (unsigned long long)p.next, (unsigned long long)s->pos.first,
                             (unsigned long long)s->pos.count, block);
    if (ip_state_get(&sv->loaded, sv->r.path, "fake1.correct", r->correct, s->count * sizeof *r->correct, e) != 0 ||
        ip_state_get(&sv->loaded, sv->r.path, "fake1.evaluated", r->evaluated, s->count * sizeof *r->evaluated, e) !=
            0 ||
        ip_state_get(&sv->loaded, sv->r.path, "fake1.detect", r->detect, s->count * sizeof *r->detect, e) != 0)
        return -1;
    r->samples = p.samples;
    s->pos = s->before = p;
    return 0;
}

int ip_task_fake1(const ip_fake1_task *t, ip_metrics *out, ip_err *e) {
    if (t->shards < 1 || t->shard < 0 || t->shard >= t->shards)
        return ip_fail(e, "shard %d of %d: need 0 <= shard < shards", t->shard, t->shards);
    if (t->passports < 1) return ip_fail(e, "passports must be positive");
    fake1_env v;
    ip_forge_result r = {0};
    ip_saver sv = {0};
    double *acc = NULL, *det = NULL, *evd = NULL;
    int rc = -1;
    memset(&v, 0, sizeof v);
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_fake1_def, t), e) < 0) goto done;
    if (env_open(&v, t, 1, e) != 0) goto done;
    double real_acc, real_det;
    if (ip_forge_real(v.f, &real_acc, &real_det, NULL, e) != 0) goto done;
    double thr = real_acc - t->forge.margin;
    uint64_t first, count;
    ip_forge_shard_range(t->passports, t->shard, t->shards, &first, &count);
    if (ip_forge_result_alloc(&r, (size_t)count, e) != 0) goto done;
    ip_forge_info plan;
    ip_forge_get_info(v.f, &plan);
    fake1_save saving = {&sv, {.next = first, .first = first, .count = count, .block = plan.block}, {0}, (size_t)count,
                          &r};
    saving.before = saving.pos;
    if (sv.resumed && fake1_restore(&saving, &r, plan.block, e) != 0) goto done;
    /* this run's feature cache is key time (every run fills it again) */
    saving.before.key_seconds += v.cache_seconds, saving.before.eval_seconds += v.cache_seconds;
    if (ip_forge_run_from(v.f, ip_forge_keygen_fn, &v.kg, first, (size_t)count, t->passports, thr, &r,
                          saving.pos.next, fake1_point, &saving, e) != 0)
        goto done;
    r.seconds += saving.before.eval_seconds, r.key_seconds += saving.before.key_seconds;
    size_t n = (size_t)count;
    acc = malloc((n ? n : 1) * sizeof *acc);
    det = malloc((n ? n : 1) * sizeof *det);
    evd = malloc((n ? n : 1) * sizeof *evd);
    if (!acc || !det || !evd) {
        ip_fail(e, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        acc[i] = r.evaluated[i] ? (double)r.correct[i] / r.evaluated[i] : 0;
        det[i] = r.detect[i];
        evd[i] = r.evaluated[i];
    }
    ip_forge_info fi;
    ip_forge_get_info(v.f, &fi);
    if (ip_fake1_summarise(acc, det, evd, n, fi.images, real_acc, real_det, thr, t->forge.detect_threshold,
                           t->keep_arrays, out, e) != 0)
        goto done;
    double secs = r.seconds > 0 ? r.seconds : 1e-9;
    ip_forge_info info;
    ip_forge_get_info(v.f, &info);
    const char *names[] = {"first", "passports_per_s", "key_seconds", "eval_seconds", "group", "chunk"};
    double vals[] = {(double)first, (double)n / secs, r.key_seconds, r.seconds, (double)info.group, (double)info.chunk};
    if (set_all(out, e, names, vals, (int)(sizeof vals / sizeof *vals)) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(acc), free(det), free(evd);
    ip_forge_result_free(&r);
    env_free(&v);
    return rc;
}

/* The array `name` of a shard's metrics, or NULL (with a message). */
static const ip_metric_array *shard_array(const ip_metrics *m, int s, const char *name, int optional, ip_err *e) {
    for (int i = 0; i < m->narrays; i++)
        if (strcmp(m->arrays[i].name, name) == 0) return &m->arrays[i];
    if (!optional) ip_fail(e, "shard %d has no array %s (was it run with its arrays?)", s, name);
    return NULL;
}

int ip_fake1_merge(const ip_metrics *parts, int nparts, ip_metrics *out, ip_err *e) {
    if (nparts < 1) return ip_fail(e, "nothing to merge");
    size_t n = 0;
    double E = ip_metrics_get(&parts[0], "eval_images");
    double real_acc = ip_metrics_get(&parts[0], "real_acc"), real_det = ip_metrics_get(&parts[0], "real_detect");
    double thr = ip_metrics_get(&parts[0], "threshold"), det_thr = ip_metrics_get(&parts[0], "detect_threshold");
    if (isnan(det_thr))
        return ip_fail(e, "shard 0 has no detect_threshold (it was run before the joint criterion): run it again");
    double key_s = 0, eval_s = 0;
    for (int s = 0; s < nparts; s++) {
        const ip_metric_array *a = shard_array(&parts[s], s, "fake_acc", 0, e);
        if (!a || !shard_array(&parts[s], s, "fake_detect", 0, e)) return -1;
        /* every shard evaluates the same model on the same images: anything else is not one experiment */
        if (ip_metrics_get(&parts[s], "eval_images") != E || ip_metrics_get(&parts[s], "real_acc") != real_acc ||
            ip_metrics_get(&parts[s], "threshold") != thr || ip_metrics_get(&parts[s], "detect_threshold") != det_thr)
            return ip_fail(e, "shard %d was run on a different model, images or thresholds than shard 0", s);
        n += a->n;
        key_s += ip_metrics_get(&parts[s], "key_seconds");
        eval_s += ip_metrics_get(&parts[s], "eval_seconds");
    }
    double *acc = malloc((n ? n : 1) * sizeof *acc), *det = malloc((n ? n : 1) * sizeof *det),
           *evd = malloc((n ? n : 1) * sizeof *evd);
    int rc = -1;
    if (!acc || !det || !evd) {
        ip_fail(e, "out of memory merging %zu passports", n);
        goto done;
    }
    size_t at = 0;
    for (int s = 0; s < nparts; s++) {
        const ip_metric_array *a = shard_array(&parts[s], s, "fake_acc", 0, e);
        const ip_metric_array *d = shard_array(&parts[s], s, "fake_detect", 0, e);
        const ip_metric_array *v = shard_array(&parts[s], s, "evaluated", 1, e);
        if (d->n != a->n || (v && v->n != a->n)) {
            ip_fail(e, "shard %d: its arrays differ in length", s);
            goto done;
        }
        memcpy(acc + at, a->v, a->n * sizeof *acc);
        memcpy(det + at, d->v, a->n * sizeof *det);
        for (size_t i = 0; i < a->n; i++) evd[at + i] = v ? v->v[i] : E;
        at += a->n;
    }
    if (ip_fake1_summarise(acc, det, evd, n, (size_t)E, real_acc, real_det, thr, det_thr, 1, out, e) != 0) goto done;
    const char *names[] = {"first", "passports_per_s", "key_seconds", "eval_seconds", "shards"};
    double vals[] = {0, eval_s > 0 ? (double)n / eval_s : NAN, key_s, eval_s, (double)nparts};
    rc = set_all(out, e, names, vals, (int)(sizeof vals / sizeof *vals));
done:
    free(acc), free(det), free(evd);
    return rc;
}

/* Key callback returning one fixed key vector. */
static int fixed_keys(void *ctx, uint64_t index, float *keys, ip_err *e) {
    (void)index, (void)e;
    const ip_model *m = ((const void **)ctx)[0];
    const float *src = ((const void **)ctx)[1];
    memcpy(keys, src, ip_keys_floats(m) * sizeof *keys);
    return 0;
}

int ip_task_verify(const ip_verify_task *t, ip_metrics *out, ip_err *e) {
    const ip_fake1_task *nt = &t->null;
    int internal = t->null_n == 0;
    if (internal && nt->passports < 1) return ip_fail(e, "passports (the null distribution) must be positive");
    fake1_env v;
    ip_model claim = {0};
    ip_saver sv = {0};
    int have_claim = 0, rc = -1;
    float *keys = NULL;
    const int8_t *bits[IP_MAX_PASSPORTS] = {0};
    ip_forge_result cr = {0}, nr = {0};
    double *nacc = NULL, *ndet = NULL;
    if (internal && ip_saver_open(&sv, &nt->resume, ip_task_ident(&ip_verify_def, t), e) < 0) goto done;
    if (env_open(&v, nt, internal, e) != 0) goto done;
    double real_acc, real_det;
    if (ip_forge_real(v.f, &real_acc, &real_det, NULL, e) != 0) goto done;
    double thr = real_acc - nt->forge.margin;
    /* the claim: keys + signature bits */
    keys = malloc(ip_keys_floats(&v.m) * sizeof *keys);
    if (!keys) {
        ip_fail(e, "out of memory");
        goto done;
    }
    if (t->claim_path[0]) {
        if (ip_cache_open_model(&claim, t->claim_path, e) != 0) goto done;
        have_claim = 1;
        if (ip_keys_compatible(&v.m, &claim, e) != 0) {
            ip_failctx(e, "claim %s", t->claim_path);
            goto done;
        }
        ip_keys_from_model(&claim, keys);
        for (int l = 0; l < claim.npassports; l++) bits[l] = claim.passports[l].bits;
    } else {
        ip_keys_from_model(&v.m, keys);
    }
    /* the claim's accuracy: always on all E images */
    ip_forge_mode keep_mode = ip_forge_set_mode(v.f, IP_FORGE_FULL);
    const void *fk[2] = {&v.m, keys};
    if (ip_forge_result_alloc(&cr, 1, e) != 0 || ip_forge_run(v.f, fixed_keys, fk, 0, 1, 0, thr, &cr, e) != 0) goto done;
    ip_forge_set_mode(v.f, keep_mode);
    double claim_acc = (double)cr.correct[0] / (double)cr.evaluated[0];
    double claim_det = ip_forge_detect_keys(&v.m, keys, bits);
    /* the null distribution */
    const double *na = t->null_acc, *nd = t->null_detect;
    size_t nn = t->null_n;
    if (internal) {
        nn = (size_t)nt->passports;
        if (ip_forge_result_alloc(&nr, nn, e) != 0) goto done;
        /* the fakes checkpoint as fake1's do (one task's range: all of them) */
        ip_forge_info plan;
        ip_forge_get_info(v.f, &plan);
        fake1_save saving = {&sv, {.first = 0, .count = nn, .block = plan.block}, {0}, nn, &nr};
        saving.before = saving.pos;
        if (sv.resumed && fake1_restore(&saving, &nr, plan.block, e) != 0) goto done;
        if (ip_forge_run_from(v.f, ip_forge_keygen_fn, &v.kg, 0, nn, nn, thr, &nr, saving.pos.next, fake1_point,
                              &saving, e) != 0)
            goto done;
        nacc = malloc(nn * sizeof *nacc);
        ndet = malloc(nn * sizeof *ndet);
        if (!nacc || !ndet) {
            ip_fail(e, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < nn; i++) nacc[i] = (double)nr.correct[i] / nr.evaluated[i], ndet[i] = nr.detect[i];
        na = nacc, nd = ndet;
    } else if (!na || !nd) {
        ip_fail(e, "null distribution arrays missing");
        goto done;
    }
    double amax = -INFINITY, dmax = -INFINITY;
    for (size_t i = 0; i < nn; i++) {
        if (na[i] > amax) amax = na[i];
        if (nd[i] > dmax) dmax = nd[i];
    }
    const char *names[] = {"claim_acc",    "claim_detect",    "p_value",  "null_passports",
                           "null_acc_max", "null_detect_max", "real_acc", "claim_accepted"};
    double vals[] = {claim_acc, claim_det,  ip_forge_p_value(claim_acc, claim_det, na, nd, nn), (double)nn, amax, dmax,
                     real_acc,  claim_acc >= thr - 1e-12 ? 1.0 : 0.0};
    if (set_all(out, e, names, vals, (int)(sizeof vals / sizeof *vals)) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(keys), free(nacc), free(ndet);
    ip_forge_result_free(&cr);
    ip_forge_result_free(&nr);
    if (have_claim) ip_model_free(&claim);
    env_free(&v);
    return rc;
}
