/* The kind erb (the ERB ambiguity attack) as the runner schedules it. Its
 * keys: core/tasks/ambiguity.c. Like fake2 (runner/kinds/attacks.c): the
 * referenced model's architecture is unknown here, so the costs assume
 * small-p; a training pass costs 3 forwards, and the evaluations are four:
 * the real passport, the initial forgery, the final one and the forged
 * passport. */
#include "cost.h"

static double secs(double imgs, double passes) { return rn_seconds_for(imgs, RN_SMALL_P_MFLOP, passes); }

static double erb_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs"), f = rn_val_f(t, "fraction");
    return secs(rn_data_images(c, 1) * (f > 0 ? f : 1) * ep, 3) + secs(rn_data_images(c, 0) * 4, 1) + 0.1;
}

/* The longest stretch between checkpoints: the last minibatch and the final evaluations. */
static double erb_step_cost(const rn_task *t, const rn_ctx *c) {
    return secs((double)rn_val_i(t, "batch"), 3) + secs(rn_data_images(c, 0) * 2, 1);
}

const rn_kind rn_kind_erb = {&ip_erb_def, RN_OUT_NONE, erb_cost, NULL, NULL, erb_step_cost};
