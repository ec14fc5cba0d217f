/* The common first step of the task code: a checkpoint and the test split it
 * is evaluated on, normalised as the model expects (tasks.h). Both come
 * through the process's cache (core/io/cache.h): copies of their own, equal
 * to fresh loads. */
#include "../io/cache.h"
#include "tasks.h"

int ip_task_open(ip_model *m, ip_dataset *test, const char *model_path, const char *data, size_t test_limit,
                 ip_err *e) {
    if (ip_cache_open_model(m, model_path, e) != 0) return -1;
    return ip_cache_data_for_model(test, data, IP_SPLIT_TEST, test_limit, m, e);
}
