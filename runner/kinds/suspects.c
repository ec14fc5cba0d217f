/* The suspect-producing kind distill as the runner schedules it. Its keys:
 * core/tasks/suspects.c. The teacher's architecture is unknown here: it is
 * costed as small-p, the student as its `arch` (small-p when it is the
 * teacher's); a training pass costs 3 forwards. */
#include "cost.h"

static double student_mflop(const rn_task *t) {
    const char *arch = rn_val_text(t, "arch");
    return arch && arch[0] ? rn_arch_mflop(arch) : RN_SMALL_P_MFLOP;
}

/* per epoch: the attacker's samples through the teacher (1 pass) and the student (3), then the student's
 * test evaluation; at the end the teacher's and the student's evaluations and the agreement's two */
static double distill_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs"), f = rn_val_f(t, "fraction");
    double imgs = rn_data_images(c, 1) * (f > 0 ? f : 1) * ep, test = rn_data_images(c, 0);
    return rn_seconds_for(imgs, RN_SMALL_P_MFLOP, 1) + rn_seconds_for(imgs, student_mflop(t), 3) +
           rn_seconds_for(test * (ep + 3), student_mflop(t), 1) + rn_seconds_for(test * 2, RN_SMALL_P_MFLOP, 1) + 0.05;
}

/* It checkpoints before each minibatch: the longest stretch is an epoch's last minibatch plus the
 * student's evaluation (the end's evaluations follow the last point too: counted as well). */
static double distill_step_cost(const rn_task *t, const rn_ctx *c) {
    double b = (double)rn_val_i(t, "batch"), test = rn_data_images(c, 0);
    return rn_seconds_for(b, RN_SMALL_P_MFLOP, 1) + rn_seconds_for(b, student_mflop(t), 3) +
           rn_seconds_for(test * 3, student_mflop(t), 1) + rn_seconds_for(test * 2, RN_SMALL_P_MFLOP, 1);
}

const rn_kind rn_kind_distill = {&ip_distill_def, RN_OUT_MODEL, distill_cost, NULL, NULL, distill_step_cost};
