/* The kind erb (the ERB ambiguity attack) as the runner schedules it. Its
 * keys: core/tasks/ambiguity.c. Like fake2 (runner/kinds/attacks.c): a
 * training on the attacker's share of the data, and four evaluations: the
 * real passport (the owner's, answered by its checkpoint's record when it has
 * one), the initial forgery, the final one and the forged passport. */
#include "cost.h"

static double erb_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "model");
    double ep = (double)rn_val_i(t, "epochs"), f = rn_val_f(t, "fraction");
    return rn_train_seconds(arch, rn_data_images(c, 1) * (f > 0 ? f : 1) * ep, rn_task_batch_factor(t, arch)) +
           rn_infer_seconds(arch, rn_data_images(c, 0) * 3) + rn_owner_eval_seconds(t, c, "model", 0) +
           2 * RN_TASK_FIXED_SECONDS;
}

/* The longest stretch between checkpoints: the last minibatch and the final evaluations. */
static double erb_step_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_model_arch(t, c, "model");
    return rn_train_seconds(arch, (double)rn_val_i(t, "batch"), 1) + rn_infer_seconds(arch, rn_data_images(c, 0) * 2);
}

const rn_kind rn_kind_erb = {&ip_erb_def, RN_OUT_NONE, erb_cost, NULL, NULL, erb_step_cost};
