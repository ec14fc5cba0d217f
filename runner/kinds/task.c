/* Tasks (task.h): their parameters as people see them. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"

const char *rn_status_name(rn_status s) {
    static const char *const n[RN_NSTATUS] = {"pending", "running", "done", "failed", "skipped", "interrupted"};
    return (unsigned)s < RN_NSTATUS ? n[s] : "?";
}

/* The shard parameter's text: "0".."63", or "all" for the merge. */
static const char *shard_text(int shard) {
    static const char *const names[RN_MAX_SHARDS] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
    "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35", "36", "37",
    "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48", "49", "50", "51", "52", "53", "54", "55",
    "56", "57", "58", "59", "60", "61", "62", "63"
    };
    if (shard == RN_MERGE) return "all";
    return shard >= 0 && shard < RN_MAX_SHARDS ? names[shard] : "?";
}

int rn_task_param(const rn_task *t, int i, const char **name, const char **text, int *swept) {
    const ip_task_def *d = t->k->def;
    for (int q = 0; q < d->nparams; q++) {
        const ip_param *p = &d->params[q];
        if (i == 0) {
            *name = p->name, *text = t->vals[q].text, *swept = (int)((t->swept >> q) & 1);
            return 0;
        }
        i--;
        if (IP_P_IS_REF(p->type)) {
            if (i == 0) {
                static _Thread_local char pn[64];
                snprintf(pn, sizeof pn, "%s_path", p->name);
                *name = pn, *text = t->vals[q].u.s ? t->vals[q].u.s : "", *swept = 0;
                return 0;
            }
            i--;
        }
    }
    if (i == 0 && t->shard != RN_NOT_SPLIT) {
        *name = "shard", *text = shard_text(t->shard), *swept = 1;
        return 0;
    }
    return -1;
}

const char *rn_task_get(const rn_task *t, const char *name) {
    const char *n, *v;
    int sw;
    for (int i = 0; rn_task_param(t, i, &n, &v, &sw) == 0; i++)
        if (strcmp(n, name) == 0) return v;
    return NULL;
}

const ip_value *rn_task_val(const rn_task *t, const char *name) {
    const ip_param *p = ip_task_param(t->k->def, name);
    return p ? &t->vals[p - t->k->def->params] : NULL;
}

int rn_task_descends(const rn_task *tasks, int id, int anc, int *seen, int mark) {
    if (id == anc) return 1;
    if (seen[id] == mark) return 0;
    seen[id] = mark;
    for (int d = 0; d < tasks[id].ndeps; d++)
        if (rn_task_descends(tasks, tasks[id].deps[d], anc, seen, mark)) return 1;
    return 0;
}

/* The values of a hand-built task and the texts they point at. */
typedef struct rn_task_own {
    ip_value vals[RN_MAX_KEYS];
    int32_t lists[RN_MAX_KEYS][1 + IP_MAX_INT_LIST];
    char *text[RN_MAX_KEYS], *path[RN_MAX_KEYS]; /* owned copies (NULL: a static text) */
} rn_task_own;

int rn_task_init(rn_task *t, const rn_kind *k) {
    memset(t, 0, sizeof *t);
    t->k = k;
    t->kind = k->def->name;
    t->key = t->name = t->checkpoint = "";
    t->shard = RN_NOT_SPLIT;
    if (k->def->nparams > RN_MAX_KEYS || !(t->own = calloc(1, sizeof *t->own))) return -1;
    for (int q = 0; q < k->def->nparams; q++) {
        ip_param_default(&k->def->params[q], &t->own->vals[q], t->own->lists[q]);
        if (IP_P_IS_REF(k->def->params[q].type)) t->own->vals[q].u.s = "";
    }
    t->vals = t->own->vals;
    return 0;
}

static char *keep(char **slot, const char *s) {
    char *c = strdup(s);
    if (!c) return NULL;
    free(*slot);
    return *slot = c;
}

int rn_task_set(rn_task *t, const char *name, const char *text, int swept) {
    const ip_task_def *d = t->k->def;
    rn_task_own *o = t->own;
    if (!o) return -1;
    for (int q = 0; q < d->nparams; q++) {
        const ip_param *p = &d->params[q];
        size_t l = strlen(p->name);
        int is_path = IP_P_IS_REF(p->type) && !strncmp(name, p->name, l) && !strcmp(name + l, "_path");
        if (strcmp(p->name, name) != 0 && !is_path) continue;
        ip_value *v = &o->vals[q];
        if (is_path) return (v->u.s = keep(&o->path[q], text)) ? 0 : -1;
        if (IP_P_IS_REF(p->type)) return (v->text = keep(&o->text[q], text)) ? 0 : -1;
        char msg[300], *copy = strdup(text);
        ip_value nv;
        if (!copy || ip_value_parse(p, copy, &nv, o->lists[q], msg, sizeof msg) != 0) {
            free(copy);
            return -1;
        }
        free(o->text[q]);
        o->text[q] = copy;
        *v = nv;
        t->swept = swept ? t->swept | 1ull << q : t->swept & ~(1ull << q);
        return 0;
    }
    return -1;
}

void rn_task_free(rn_task *t) {
    if (!t->own) return;
    for (int q = 0; q < RN_MAX_KEYS; q++) free(t->own->text[q]), free(t->own->path[q]);
    free(t->own);
    t->own = NULL;
    t->vals = NULL;
}
