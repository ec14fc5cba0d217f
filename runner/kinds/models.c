/* The kinds train, eval, prune and noop as the runner schedules them: what
 * they leave and what they cost. Their keys: core/tasks/train.c, noop.c. */
#include <string.h>

#include "../../core/passport/trigger.h"
#include "cost.h"

/* v2 and v3 train two branches (two passes over each minibatch); v3 mixes
 * IP_TRIGGER_PER_BATCH trigger images into every minibatch; a small batch
 * costs more per image. */
static double train_passes(const rn_task *t, const char *arch) {
    const char *sch = rn_val_text(t, "scheme");
    double batch = (double)rn_val_i(t, "batch");
    double passes = strcmp(sch, "v2") == 0 || strcmp(sch, "v3") == 0 ? 2 : 1;
    if (strcmp(sch, "v3") == 0 && batch > 0) passes *= 1 + IP_TRIGGER_PER_BATCH / batch;
    return passes * rn_batch_factor(arch, batch);
}

/* the epochs' training, a test evaluation before the first and after each */
static double train_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_val_text(t, "arch");
    double epochs = (double)rn_val_i(t, "epochs");
    return rn_train_seconds(arch, rn_data_images(c, 1) * epochs, train_passes(t, arch)) +
           rn_infer_seconds(arch, rn_data_images(c, 0) * (epochs + 1)) + RN_TASK_FIXED_SECONDS;
}

/* Training saves before each minibatch (core/model/train.c), so its longest
 * stretch is an epoch's last minibatch plus the evaluation on the test split
 * that ends the epoch. */
static double train_step_cost(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_val_text(t, "arch");
    return rn_train_seconds(arch, (double)rn_val_i(t, "batch"), train_passes(t, arch)) +
           rn_infer_seconds(arch, rn_data_images(c, 0));
}

/* the test split through every branch of the model (v2/v3: private and public; core/tasks/models.c
 * passport_metrics) */
static double evaluation_cost(const rn_task *t, const rn_ctx *c) {
    return rn_infer_seconds(rn_model_arch(t, c, "model"), rn_data_images(c, 0) * rn_model_branches(t, c, "model")) +
           RN_TASK_FIXED_SECONDS;
}

/* an evaluation, unless the checkpoint's records answer it */
static double eval_cost(const rn_task *t, const rn_ctx *c) {
    return rn_accuracy_recorded(t, c, "model") ? RN_TASK_FIXED_SECONDS : evaluation_cost(t, c);
}

/* an evaluation (of new weights) and a checkpoint written */
static double prune_cost(const rn_task *t, const rn_ctx *c) { return evaluation_cost(t, c) + RN_TASK_FIXED_SECONDS; }

static double noop_cost(const rn_task *t, const rn_ctx *c) {
    (void)t, (void)c;
    return 1e-6;
}

const rn_kind rn_kind_train = {&ip_train_def, RN_OUT_MODEL, train_cost, NULL, NULL, train_step_cost};
const rn_kind rn_kind_eval = {&ip_eval_def, RN_OUT_NONE, eval_cost, NULL, NULL, NULL};
const rn_kind rn_kind_prune = {&ip_prune_def, RN_OUT_MODEL, prune_cost, NULL, NULL, NULL};
const rn_kind rn_kind_noop = {&ip_noop_def, RN_OUT_NONE, noop_cost, NULL, NULL, NULL};
