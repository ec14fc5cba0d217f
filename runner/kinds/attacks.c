/* The attack kinds finetune, flip, fake2 and fake3 as the runner schedules
 * them. Their keys: core/tasks/attacks.c. They cost the referenced model's
 * training and evaluation (cost.h). */
#include "cost.h"

static double fraction_of(const rn_task *t, const char *key) {
    double f = rn_val_f(t, key);
    return f > 0 ? f : 1;
}

/* per epoch the attacker's share of the training split; test evaluations: two per epoch and the deployed
 * owner's before */
static double finetune_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "model");
    double ep = (double)rn_val_i(t, "epochs");
    const double images = rn_data_images(c, 1) * fraction_of(t, "fraction") * ep;
    return rn_train_seconds(arch, images, rn_task_batch_factor(t, arch)) +
           rn_infer_seconds(arch, rn_data_images(c, 0) * 2 * ep) + rn_owner_eval_seconds(t, c, "model", 1) +
           RN_TASK_FIXED_SECONDS;
}

static double flip_cost(const rn_task *t, const rn_ctx *c) {
    return rn_infer_seconds(rn_model_arch(t, c, "model"), rn_data_images(c, 0)) + RN_TASK_FIXED_SECONDS;
}

/* fake2 and fake3: a training of the scales and biases (the backward still runs through every layer), one
 * evaluation per epoch, one at the start and the owner's */
static double forge_train_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "model");
    double ep = (double)rn_val_i(t, "epochs");
    const double images = rn_data_images(c, 1) * fraction_of(t, "fraction") * ep;
    return rn_train_seconds(arch, images, rn_task_batch_factor(t, arch)) +
           rn_infer_seconds(arch, rn_data_images(c, 0) * (ep + 1)) + rn_owner_eval_seconds(t, c, "model", 0) +
           RN_TASK_FIXED_SECONDS;
}

/* Steps, for when their loop checkpoints before each minibatch (like
 * training): the longest stretch is an epoch's last minibatch plus its
 * evaluations (finetune: two per epoch, fake2/fake3: one). */
static double attack_step(const rn_task *t, const rn_ctx *c, double evals) {
    const char *arch = rn_model_arch(t, c, "model");
    return rn_train_seconds(arch, (double)rn_val_i(t, "batch"), 1) + rn_infer_seconds(arch, rn_data_images(c, 0) * evals);
}
static double finetune_step_cost(const rn_task *t, const rn_ctx *c) { return attack_step(t, c, 2); }
static double forge_train_step_cost(const rn_task *t, const rn_ctx *c) { return attack_step(t, c, 1); }

const rn_kind rn_kind_finetune = {&ip_finetune_def, RN_OUT_MODEL, finetune_cost, NULL, NULL, finetune_step_cost};
const rn_kind rn_kind_flip = {&ip_flip_def, RN_OUT_NONE, flip_cost, NULL, NULL, NULL};
const rn_kind rn_kind_fake2 = {&ip_fake2_def, RN_OUT_NONE, forge_train_cost, NULL, NULL, forge_train_step_cost};
const rn_kind rn_kind_fake3 = {&ip_fake3_def, RN_OUT_NONE, forge_train_cost, NULL, NULL, forge_train_step_cost};
