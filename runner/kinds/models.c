/* The kinds train, eval, prune and noop as the runner schedules them: what
 * they leave and what they cost. Their keys: core/tasks/train.c, noop.c. */
#include <string.h>

#include "../../core/passport/trigger.h"
#include "cost.h"

static double train_cost(const rn_task *t, const rn_ctx *c) {
    const char *sch = rn_val_text(t, "scheme");
    double passes = 3.0 * (strcmp(sch, "v2") == 0 || strcmp(sch, "v3") == 0 ? 2 : 1);
    double epochs = (double)rn_val_i(t, "epochs"), mflop = rn_arch_mflop(rn_val_text(t, "arch"));
    return rn_seconds_for(rn_data_images(c, 1) * epochs, mflop, passes) +
           rn_seconds_for(rn_data_images(c, 0) * (epochs + 1), mflop, 1);
}

/* Training saves before each minibatch (core/model/train.c), so its longest
 * stretch is an epoch's last minibatch plus the evaluation on the test split
 * that ends the epoch. */
static double train_step_cost(const rn_task *t, const rn_ctx *c) {
    const char *sch = rn_val_text(t, "scheme");
    int v2v3 = strcmp(sch, "v2") == 0 || strcmp(sch, "v3") == 0;
    double batch = (double)rn_val_i(t, "batch") + (strcmp(sch, "v3") == 0 ? IP_TRIGGER_PER_BATCH : 0);
    double mflop = rn_arch_mflop(rn_val_text(t, "arch"));
    return rn_seconds_for(batch, mflop, 3.0 * (v2v3 ? 2 : 1)) + rn_seconds_for(rn_data_images(c, 0), mflop, 1);
}

static double eval_cost(const rn_task *t, const rn_ctx *c) {
    (void)t;
    return rn_seconds_for(rn_data_images(c, 0), 15, 1) + 0.05;
}

static double prune_cost(const rn_task *t, const rn_ctx *c) { return eval_cost(t, c) + 0.05; }

static double noop_cost(const rn_task *t, const rn_ctx *c) {
    (void)t, (void)c;
    return 1e-6;
}

const rn_kind rn_kind_train = {&ip_train_def, RN_OUT_MODEL, train_cost, NULL, NULL, train_step_cost};
const rn_kind rn_kind_eval = {&ip_eval_def, RN_OUT_NONE, eval_cost, NULL, NULL, NULL};
const rn_kind rn_kind_prune = {&ip_prune_def, RN_OUT_MODEL, prune_cost, NULL, NULL, NULL};
const rn_kind rn_kind_noop = {&ip_noop_def, RN_OUT_NONE, noop_cost, NULL, NULL, NULL};
