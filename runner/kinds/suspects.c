/* The suspect-producing kinds distill, extract and advtrain as the runner schedules
 * them. Their keys: core/tasks/suspects.c. The teacher is costed as the
 * architecture of the model it names (cost.h), a student as its `arch` (the
 * teacher's when empty); a PGD step as a forward and a backward to the
 * input (RN_INPUT_GRAD_PASS). A student's accuracy at the end, after its
 * last epoch's, is of the same weights: the model's own record answers it
 * (core/model/evalrec.h), as the owner's checkpoint's may answer the owner's
 * (rn_owner_eval_seconds). */
#include <string.h>

#include "cost.h"

static const char *student_arch(const rn_task *t, const rn_ctx *c) {
    const char *arch = rn_val_text(t, "arch");
    return arch[0] ? arch : rn_model_arch(t, c, "model");
}

/* Test evaluations of the student: one per epoch, the end's (unless an epoch's answers it) and its
 * predictions for the agreement. */
static double student_evaluations(double epochs) { return epochs + (epochs >= 1 ? 0 : 1) + 1; }

/* the teacher's accuracy first; per epoch: the attacker's samples through the teacher (1 pass) and the
 * student (3), then the student's test evaluation; at the end the student's and the agreement's two
 * predictions */
static double distill_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs"), f = rn_val_f(t, "fraction");
    double imgs = rn_data_images(c, 1) * (f > 0 ? f : 1) * ep, test = rn_data_images(c, 0);
    const char *teacher = rn_model_arch(t, c, "model"), *student = student_arch(t, c);
    return rn_owner_eval_seconds(t, c, "model", 0) + rn_infer_seconds(teacher, imgs + test) +
           rn_train_seconds(student, imgs, rn_task_batch_factor(t, student)) +
           rn_infer_seconds(student, test * student_evaluations(ep)) + RN_TASK_FIXED_SECONDS;
}

/* It checkpoints before each minibatch: the longest stretch is an epoch's last minibatch plus the
 * student's evaluation (the end's evaluations follow the last point too: counted as well). */
static double distill_step_cost(const rn_task *t, const rn_ctx *c) {
    double b = (double)rn_val_i(t, "batch"), test = rn_data_images(c, 0);
    const char *teacher = rn_model_arch(t, c, "model"), *student = student_arch(t, c);
    return rn_infer_seconds(teacher, b + test * 2) + rn_train_seconds(student, b, 1) +
           rn_infer_seconds(student, test * 3);
}

const rn_kind rn_kind_distill = {&ip_distill_def, RN_OUT_MODEL, distill_cost, NULL, NULL, distill_step_cost};

/* The queries the owner labels: N, at most the training pool when they are drawn from it. */
static double extract_queries(const rn_task *t, const rn_ctx *c) {
    double n = (double)rn_val_i(t, "queries"), pool = rn_data_images(c, 1);
    const char *src = rn_val_text(t, "query_data");
    return src && strcmp(src, "noise") == 0 ? n : n < pool ? n : pool;
}

/* the N queries through the owner once; per epoch the student's training pass (3) on them and its test
 * evaluation; the owner's evaluation before, the student's and the agreement's two after */
static double extract_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs"), n = extract_queries(t, c), test = rn_data_images(c, 0);
    const char *owner = rn_model_arch(t, c, "model"), *student = student_arch(t, c);
    return rn_owner_eval_seconds(t, c, "model", 0) + rn_infer_seconds(owner, n + test) +
           rn_train_seconds(student, n * ep, rn_task_batch_factor(t, student)) +
           rn_infer_seconds(student, test * student_evaluations(ep)) + RN_TASK_FIXED_SECONDS;
}

/* The longest stretch between two checkpoints: the labelling of every query before the first one, or a
 * minibatch plus the evaluations that may follow it (as distill's, without the teacher's pass). */
static double extract_step_cost(const rn_task *t, const rn_ctx *c) {
    double b = (double)rn_val_i(t, "batch"), test = rn_data_images(c, 0);
    const char *owner = rn_model_arch(t, c, "model"), *student = student_arch(t, c);
    double first = rn_infer_seconds(owner, extract_queries(t, c) + test);
    double step = rn_train_seconds(student, b, 1) + rn_infer_seconds(student, test * 3) + rn_infer_seconds(owner, test * 2);
    return first > step ? first : step;
}

const rn_kind rn_kind_extract = {&ip_extract_def, RN_OUT_MODEL, extract_cost, NULL, NULL, extract_step_cost};

/* per epoch: PGD (steps x 3) and the training pass (3) on the attacker's samples, a test evaluation; PGD on
 * adv_eval test images before and after, and the deployed owner's clean evaluation before (the one after
 * is the last epoch's weights, or the owner's when there is none: answered by a record) */
static double advtrain_cost(const rn_task *t, const rn_ctx *c) {
    double ep = (double)rn_val_i(t, "epochs"), f = rn_val_f(t, "fraction"), steps = (double)rn_val_i(t, "steps");
    double adv = (double)rn_val_i(t, "adv_eval"), test = rn_data_images(c, 0);
    const char *arch = rn_model_arch(t, c, "model");
    if (adv > test) adv = test;
    return rn_train_seconds(arch, rn_data_images(c, 1) * (f > 0 ? f : 1) * ep, steps * RN_INPUT_GRAD_PASS + 1) +
           rn_infer_seconds(arch, test * ep + 2 * adv) + rn_owner_eval_seconds(t, c, "model", 1) +
           rn_train_seconds(arch, 2 * adv, steps * RN_INPUT_GRAD_PASS) + RN_TASK_FIXED_SECONDS;
}

/* a minibatch with its PGD, then the epoch's evaluation; the end's PGD evaluation follows the last point */
static double advtrain_step_cost(const rn_task *t, const rn_ctx *c) {
    double steps = (double)rn_val_i(t, "steps"), adv = (double)rn_val_i(t, "adv_eval"), test = rn_data_images(c, 0);
    const char *arch = rn_model_arch(t, c, "model");
    if (adv > test) adv = test;
    return rn_train_seconds(arch, (double)rn_val_i(t, "batch"), steps * RN_INPUT_GRAD_PASS + 1) +
           rn_infer_seconds(arch, test * 2 + adv) + rn_train_seconds(arch, adv, steps * RN_INPUT_GRAD_PASS);
}

const rn_kind rn_kind_advtrain = {&ip_advtrain_def, RN_OUT_MODEL, advtrain_cost, NULL, NULL, advtrain_step_cost};
