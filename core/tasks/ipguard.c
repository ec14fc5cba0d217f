/* The IPGuard kinds fingerprint and match (core/fingerprint.h,
 * docs/fingerprint.md): their parameter tables. */
#include "../fingerprint.h"
#include "param.h"

/* branch: "default" resolves per model (ip_fp_resolve_branch) */
static const int branch_values[] = {-1, IP_BRANCH_PUBLIC, IP_BRANCH_PRIVATE};

/* ---------------- fingerprint ---------------- */

#define T ip_fingerprint_task
static const ip_param fingerprint_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the owner model whose classification boundary is fingerprinted"),
    P_INT(T, "points", IP_F_SIZE, fp.points, 100, 1, 1e6, "K: seeds optimised into boundary points (converged ones are kept)"),
    P_FLOAT(T, "k", IP_F_FLOAT, fp.margin, 1, 0, 1e6, "margin k in logits: the target label j beats the seed's label i by k"),
    P_ENUM(T, "init", fp.init, "train", "train|noise", NULL,
           "seeds: training images, or uniform noise in the valid input range"),
    P_ENUM(T, "target", fp.target, "random", "random|least-likely", NULL, "target label j (never the seed's label i)"),
    P_FLOAT(T, "lr", IP_F_FLOAT, fp.lr, 0.01, 1e-9, 100, "Adam learning rate on the inputs (normalised units)"),
    P_INT(T, "max_iter", IP_F_INT, fp.max_iter, 1000, 0, 1e7, "Adam steps at most; a point still above zero loss is dropped"),
    P_INT(T, "batch", IP_F_INT, fp.batch, 0, 0, 1e6,
          "points optimised together in one forward/backward (0 = all, at most ~1 GB of activations)"),
    P_ENUM(T, "branch", fp.branch, "default", "default|public|private", branch_values,
           "passport models: branch fingerprinted (default: public for v2/v3, what a thief deploys)"),
    P_INT(T, "seed", IP_F_U64, fp.seed, 1, 0, 2147483647, "seed images, noise and targets"),
    /* read by the results' verdicts (runner/ipguard_summary.c), not by the task */
    {"fpr", IP_P_FLOAT, IP_F_NONE, 0, 0, "0.05", 0.05, 0, 1, NULL, NULL,
     "verdicts: the matching-rate threshold is the smallest with at most this false-positive rate on the independent "
     "suspects (results /ipguard)"},
};
_Static_assert(IP_FP_INIT_TRAIN == 0 && IP_FP_INIT_NOISE == 1, "choices in enum order");
_Static_assert(IP_FP_TARGET_RANDOM == 0 && IP_FP_TARGET_LEAST == 1, "choices in enum order");

static void fingerprint_init(void *p) { ip_fp_defaults(&((T *)p)->fp); }
static int fingerprint_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fingerprint(t, out, e); }
const ip_task_def ip_fingerprint_def = {
    "fingerprint",
    "IPGuard: K points just across the owner's classification boundary, saved as a fingerprint file "
    "(docs/fingerprint.md)",
    fingerprint_params, (int)(sizeof fingerprint_params / sizeof *fingerprint_params), sizeof(T), fingerprint_init,
    offsetof(T, data), offsetof(T, train_limit), offsetof(T, test_limit), offsetof(T, out),
    {IP_NO_FIELD, IP_NO_FIELD}, NULL, fingerprint_run};
#undef T

/* ---------------- match ---------------- */

#define T ip_match_task
static const ip_param match_params[] = {
    P_REF(T, "fingerprint", IP_P_FINGERPRINT, fingerprint_path, NULL, "the owner's fingerprint (a fingerprint entry)"),
    P_REF(T, "suspect", IP_P_MODEL, suspect_path, NULL, "the suspect model (a pirated copy or an independent model)"),
    P_ENUM(T, "branch", branch, "default", "default|public|private", branch_values,
           "passport suspects: branch queried (default: public for v2/v3)"),
};
static int match_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_match(t, out, e); }
const ip_task_def ip_match_def = {
    "match", "IPGuard: matching rate of a suspect model on a fingerprint (and the suspect's test accuracy)",
    match_params, (int)(sizeof match_params / sizeof *match_params), sizeof(T), NULL, offsetof(T, data), IP_NO_FIELD,
    offsetof(T, test_limit), IP_NO_FIELD, {IP_NO_FIELD, IP_NO_FIELD}, NULL, match_run};
#undef T
