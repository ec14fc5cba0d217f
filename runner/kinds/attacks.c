/* The attack kinds finetune, flip, fake2 and fake3 as the runner schedules
 * them. Their keys: core/tasks/attacks.c. The referenced model's
 * architecture is unknown here: the costs assume small-p; a training pass
 * costs 3 forwards. */
#include "cost.h"

static double secs(double imgs, double passes) { return rn_seconds_for(imgs, RN_SMALL_P_MFLOP, passes); }
static double fraction_of(const rn_task *t, const char *key) {
    double f = rn_val_f(t, key);
    return f > 0 ? f : 1;
}

static double finetune_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs");
    return secs(rn_data_images(c, 1) * fraction_of(t, "fraction") * ep, 3) + secs(rn_data_images(c, 0) * (2 * ep + 1), 1) +
           0.05;
}

static double flip_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    return secs(rn_data_images(c, 0), 1) + 0.05;
}

/* fake2 and fake3 */
static double forge_train_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs");
    return secs(rn_data_images(c, 1) * fraction_of(t, "fraction") * ep, 3) + secs(rn_data_images(c, 0) * (ep + 2), 1) +
           0.05;
}

/* Steps, for when their loop checkpoints before each minibatch (like
 * training): the longest stretch is an epoch's last minibatch plus its
 * evaluations (finetune: two per epoch, fake2/fake3: one). */
static double attack_step(const rn_task *t, const rn_ctx *c, double evals) {
    return secs((double)rn_val_i(t, "batch"), 3) + secs(rn_data_images(c, 0) * evals, 1);
}
static double finetune_step_cost(const rn_task *t, const rn_ctx *c) { return attack_step(t, c, 2); }
static double forge_train_step_cost(const rn_task *t, const rn_ctx *c) { return attack_step(t, c, 1); }

const rn_kind rn_kind_finetune = {&ip_finetune_def, RN_OUT_MODEL, finetune_cost, NULL, NULL, finetune_step_cost};
const rn_kind rn_kind_flip = {&ip_flip_def, RN_OUT_NONE, flip_cost, NULL, NULL, NULL};
const rn_kind rn_kind_fake2 = {&ip_fake2_def, RN_OUT_NONE, forge_train_cost, NULL, NULL, forge_train_step_cost};
const rn_kind rn_kind_fake3 = {&ip_fake3_def, RN_OUT_NONE, forge_train_cost, NULL, NULL, forge_train_step_cost};
