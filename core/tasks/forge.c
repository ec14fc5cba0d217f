/* The fake-passport kinds fake1 and verify (core/forge.h,
 * docs/passports.md): their parameter tables and the rule across keys. */
#include <stdio.h>
#include <string.h>

#include "../forge.h"
#include "param.h"

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
    P_INT(T, "seed", IP_F_U64, seed, 1, 0, 2147483647, "passport keys and image order (the same for every shard)"),
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
 * without one they cannot be made (docs/passports.md). */
static int fake1_check(const void *p, const char **key, char *msg, size_t cap) {
    const T *t = p;
    if (t->key_type == IP_KEY_RANDOM || t->reference_path[0]) return 0;
    *key = "key_type";
    snprintf(msg, cap, "key_type %s needs `reference` (a model of the same architecture, e.g. the baseline)",
             t->key_type == IP_KEY_IMAGE ? "image" : "shuffle");
    return -1;
}

static int fake1_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fake1(t, out, e); }
const ip_task_def ip_fake1_def = {
    "fake1", "fake-passport attack: accuracy and signature detection of N forged passports (docs/passports.md)",
    fake1_params, (int)(sizeof fake1_params / sizeof *fake1_params), sizeof(T), fake1_init, offsetof(T, data),
    offsetof(T, train_limit), offsetof(T, test_limit), IP_NO_FIELD, {IP_NO_FIELD, IP_NO_FIELD}, fake1_check, fake1_run};
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
static int verify_check(const void *p, const char **key, char *msg, size_t cap) {
    return fake1_check(&((const T *)p)->null, key, msg, cap);
}
static int verify_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_verify(t, out, e); }
const ip_task_def ip_verify_def = {
    "verify",
    "ownership claim vs a fake1 null distribution run by the task: claim_acc, claim_detect, p_value",
    verify_params, (int)(sizeof verify_params / sizeof *verify_params), sizeof(T), verify_init,
    offsetof(T, null.data), offsetof(T, null.train_limit), offsetof(T, null.test_limit), IP_NO_FIELD,
    {IP_NO_FIELD, IP_NO_FIELD}, verify_check, verify_run};
#undef T
