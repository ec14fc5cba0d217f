#include "task.h"

#include <stdio.h>
#include <string.h>

const char *rn_status_name(rn_status s) {
    static const char *const names[] = {"pending", "running", "done", "failed", "skipped"};
    return (unsigned)s < 5 ? names[s] : "?";
}

const char *rn_task_get(const rn_task *t, const char *name) {
    for (int i = 0; i < t->nparams; i++)
        if (strcmp(t->params[i].name, name) == 0) return t->params[i].value;
    return NULL;
}

int rn_task_set(rn_task *t, const char *name, const char *value, int swept) {
    if (strlen(name) >= RN_PARAM_NAME_LEN || strlen(value) >= RN_PARAM_VALUE_LEN) return -1;
    rn_param *p = NULL;
    for (int i = 0; i < t->nparams; i++)
        if (strcmp(t->params[i].name, name) == 0) p = &t->params[i];
    if (!p) {
        if (t->nparams >= RN_MAX_PARAMS) return -1;
        p = &t->params[t->nparams++];
        snprintf(p->name, sizeof p->name, "%s", name);
    }
    snprintf(p->value, sizeof p->value, "%s", value);
    p->swept = swept;
    return 0;
}
