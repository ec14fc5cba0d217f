/* The common first step of the task code: a checkpoint and the test split it
 * is evaluated on, normalised as the model expects (tasks.h). */
#include "../io/ckpt.h"
#include "../io/data.h"
#include "../model/train.h"
#include "tasks.h"

int ip_task_open(ip_model *m, ip_dataset *test, const char *model_path, const char *data, size_t test_limit,
                 ip_err *e) {
    if (ip_ckpt_open_model(m, model_path, e) != 0) return -1;
    if (ip_data_load(test, data, IP_SPLIT_TEST, test_limit, e) != 0) return -1;
    return ip_data_match_model(test, m, e);
}
