/* Task parameters (param.h): defaults, parsing and storing by the rows. */
#include "param.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/resume.h"
#include "../nn/optim.h"
#include "../util/rng.h"

const ip_task_def *ip_task_def_find(const char *name) {
    for (int i = 0; ip_task_defs[i]; i++)
        if (strcmp(ip_task_defs[i]->name, name) == 0) return ip_task_defs[i];
    return NULL;
}

const ip_param *ip_task_param(const ip_task_def *d, const char *name) {
    for (int i = 0; i < d->nparams; i++)
        if (strcmp(d->params[i].name, name) == 0) return &d->params[i];
    return NULL;
}

int ip_param_choice(const ip_param *p, const char *s) {
    if (!p->choices) return -1;
    size_t l = strlen(s);
    int idx = 0;
    for (const char *c = p->choices; *c; idx++) {
        size_t n = strcspn(c, "|");
        if (n == l && strncmp(c, s, l) == 0) return idx;
        c += n;
        if (*c == '|') c++;
    }
    return -1;
}

/* The name of choice idx (into out). */
static void choice_name(const ip_param *p, int64_t idx, char *out, size_t cap) {
    const char *c = p->choices;
    for (int64_t i = 0; i < idx && *c; i++) {
        c += strcspn(c, "|");
        if (*c == '|') c++;
    }
    snprintf(out, cap, "%.*s", (int)strcspn(c, "|"), c);
}

static void fmt_num(char *out, size_t cap, double v) {
    if (v == 0) v = 0; /* no "-0" */
    snprintf(out, cap, "%.10g", v);
}

/* "an integer in [0, 100000]", "one of sgd|adam", ... for messages. */
static const char *type_desc(const ip_param *p, char *buf, size_t cap) {
    char a[40], b[40];
    fmt_num(a, sizeof a, p->min);
    fmt_num(b, sizeof b, p->max);
    switch (p->type) {
    case IP_P_INT: snprintf(buf, cap, "an integer in [%s, %s]", a, b); break;
    case IP_P_FLOAT: snprintf(buf, cap, "a number in [%s, %s]", a, b); break;
    case IP_P_STRING: snprintf(buf, cap, "a string"); break;
    case IP_P_BOOL: snprintf(buf, cap, "true or false"); break;
    case IP_P_ENUM: snprintf(buf, cap, "one of %s", p->choices); break;
    case IP_P_MODEL: snprintf(buf, cap, "a model"); break;
    case IP_P_FINGERPRINT: snprintf(buf, cap, "a fingerprint"); break;
    case IP_P_INTLIST: snprintf(buf, cap, "a list of increasing integers in [%s, %s], e.g. \"100,150\"", a, b); break;
    case IP_P_COPIES:
    case IP_P_OTHERS: snprintf(buf, cap, "a set of models"); break;
    }
    return buf;
}

/* "a,b,c": the rule of IP_P_INTLIST (items in [min, max], increasing, at most
 * IP_MAX_INT_LIST; "" = none). */
static int int_list_parse(const ip_param *p, const char *s, int32_t *out, char *msg, size_t cap) {
    int n = 0;
    const char *q = s;
    out[0] = 0;
    if (!*q) return 0;
    for (;;) {
        while (*q == ' ') q++;
        const char *start = q;
        while (*q >= '0' && *q <= '9') q++;
        const char *end = q;
        while (*q == ' ') q++;
        if (end == start) {
            size_t l = strcspn(start, ",");
            if (l == 0 || (size_t)(q - start) == l)
                snprintf(msg, cap, "empty item in \"%s\" (expected integers separated by commas, e.g. \"100,150\")", s);
            else snprintf(msg, cap, "\"%.*s\" is not a positive integer (expected e.g. \"100,150\")", (int)l, start);
            return -1;
        }
        if (*q && *q != ',') {
            snprintf(msg, cap, "\"%.*s\" is not a positive integer (expected e.g. \"100,150\")", (int)strcspn(start, ","),
                     start);
            return -1;
        }
        /* at most 15 digits: no overflow, and compared with max exactly */
        size_t digits = (size_t)(end - start);
        double v = digits > 15 ? INFINITY : strtod(start, NULL);
        if (v < p->min || v > p->max) {
            snprintf(msg, cap, "%.*s is out of range [%.10g, %.10g]", (int)digits, start, p->min, p->max);
            return -1;
        }
        if (n > 0 && (int32_t)v <= out[n]) {
            snprintf(msg, cap, "%ld does not come after %ld (the list must increase)", (long)v, (long)out[n]);
            return -1;
        }
        if (n >= IP_MAX_INT_LIST) {
            snprintf(msg, cap, "more than %d items", IP_MAX_INT_LIST);
            return -1;
        }
        out[++n] = (int32_t)v;
        out[0] = n;
        if (!*q) return 0;
        q++; /* the comma */
        if (!*q) {
            snprintf(msg, cap, "\"%s\" ends with a comma", s);
            return -1;
        }
    }
}

/* An integer text: optional sign, digits only. */
static int is_int_text(const char *s) {
    if (*s == '-' || *s == '+') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

int ip_value_parse(const ip_param *p, const char *text, ip_value *v, int32_t *list_buf, char *msg, size_t cap) {
    char tb[200];
    memset(v, 0, sizeof *v);
    v->text = text;
    switch (p->type) {
    case IP_P_INT: {
        if (!is_int_text(text)) {
            snprintf(msg, cap, "expected an integer, got \"%s\"", text);
            return -1;
        }
        errno = 0;
        long long x = strtoll(text, NULL, 10);
        if (errno == ERANGE || (double)x < p->min || (double)x > p->max) {
            char a[40], b[40];
            fmt_num(a, sizeof a, p->min);
            fmt_num(b, sizeof b, p->max);
            snprintf(msg, cap, "%s is out of range [%s, %s]", text, a, b);
            return -1;
        }
        v->u.i = x;
        return 0;
    }
    case IP_P_FLOAT: {
        char *end;
        errno = 0;
        double x = strtod(text, &end);
        if (!*text || *end || isnan(x) || isinf(x)) {
            snprintf(msg, cap, "expected a number, got \"%s\"", text);
            return -1;
        }
        if (x < p->min || x > p->max) {
            char a[40], b[40];
            fmt_num(a, sizeof a, p->min);
            fmt_num(b, sizeof b, p->max);
            snprintf(msg, cap, "%s is out of range [%s, %s]", text, a, b);
            return -1;
        }
        v->u.f = x;
        return 0;
    }
    case IP_P_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE")) {
            v->text = "true", v->u.i = 1;
            return 0;
        }
        if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE")) {
            v->text = "false", v->u.i = 0;
            return 0;
        }
        snprintf(msg, cap, "expected true or false, got \"%s\"", text);
        return -1;
    case IP_P_ENUM: {
        int idx = ip_param_choice(p, text);
        if (idx < 0) {
            snprintf(msg, cap, "invalid value \"%s\" (choices: %s)", text, type_desc(p, tb, sizeof tb) + 7);
            return -1;
        }
        v->u.i = idx;
        return 0;
    }
    case IP_P_INTLIST:
        if (int_list_parse(p, text, list_buf, msg, cap) != 0) return -1;
        v->u.list = list_buf;
        return 0;
    case IP_P_MODEL:
    case IP_P_FINGERPRINT:
    case IP_P_COPIES:
    case IP_P_OTHERS:
    case IP_P_STRING:
        if (p->field == IP_F_STR && strlen(text) >= p->size) {
            snprintf(msg, cap, "value is longer than %zu characters", p->size - 1);
            return -1;
        }
        v->u.s = text;
        return 0;
    }
    snprintf(msg, cap, "unknown parameter type");
    return -1;
}

int ip_path_set_split(const char *list, const char **out, size_t *len, int cap, char *msg, size_t msgcap) {
    int n = 0;
    if (!list[0]) return 0;
    for (const char *p = list;;) {
        size_t l = strcspn(p, (char[]){IP_PATH_SET_SEP, 0});
        if (l == 0) {
            snprintf(msg, msgcap, "empty path in the list \"%s\" (paths separated by '%c')", list, IP_PATH_SET_SEP);
            return -1;
        }
        if (n >= cap) {
            snprintf(msg, msgcap, "more than %d paths in the list", cap);
            return -1;
        }
        out[n] = p, len[n] = l, n++;
        if (!p[l]) return n;
        p += l + 1;
        if (!*p) {
            snprintf(msg, msgcap, "the list \"%s\" ends with '%c'", list, IP_PATH_SET_SEP);
            return -1;
        }
    }
}

int ip_param_default(const ip_param *p, ip_value *v, int32_t *list_buf) {
    memset(v, 0, sizeof *v);
    v->text = p->def ? p->def : "";
    switch (p->type) {
    case IP_P_INT:
    case IP_P_BOOL: v->u.i = (int64_t)p->defnum; return 0;
    case IP_P_FLOAT: v->u.f = p->defnum; return 0;
    case IP_P_ENUM: {
        int idx = ip_param_choice(p, v->text);
        v->u.i = idx;
        return idx < 0 ? -1 : 0;
    }
    case IP_P_INTLIST: {
        char msg[160];
        v->u.list = list_buf;
        return int_list_parse(p, v->text, list_buf, msg, sizeof msg);
    }
    default: v->u.s = v->text; return 0;
    }
}

int ip_param_store(const ip_param *p, const ip_value *v, void *task, ip_err *e) {
    char *at = (char *)task + p->offset;
    switch (p->field) {
    case IP_F_NONE: return 0;
    case IP_F_INT: {
        int x;
        if (p->type == IP_P_ENUM) x = p->values ? p->values[v->u.i] : (int)v->u.i;
        else x = (int)v->u.i;
        memcpy(at, &x, sizeof x);
        return 0;
    }
    case IP_F_SIZE: {
        size_t x = (size_t)v->u.i;
        memcpy(at, &x, sizeof x);
        return 0;
    }
    case IP_F_U64: {
        uint64_t x = (uint64_t)v->u.i;
        memcpy(at, &x, sizeof x);
        return 0;
    }
    case IP_F_FLOAT: {
        float x = (float)(p->type == IP_P_FLOAT ? v->u.f : (double)v->u.i);
        memcpy(at, &x, sizeof x);
        return 0;
    }
    case IP_F_DOUBLE: {
        double x = p->type == IP_P_FLOAT ? v->u.f : (double)v->u.i;
        memcpy(at, &x, sizeof x);
        return 0;
    }
    case IP_F_STR: {
        char name[64];
        const char *s = v->u.s;
        if (p->type == IP_P_ENUM) {
            choice_name(p, v->u.i, name, sizeof name);
            s = name;
        }
        if (!s) s = "";
        size_t l = strlen(s);
        if (l >= p->size) return ip_fail_input(e, "%s is longer than %zu characters", p->name, p->size - 1);
        memcpy(at, s, l + 1);
        return 0;
    }
    case IP_F_MILESTONES: {
        ip_optim_cfg *o = (ip_optim_cfg *)at;
        int n = v->u.list ? v->u.list[0] : 0;
        o->nmilestones = n;
        for (int i = 0; i < n; i++) o->milestones[i] = v->u.list[1 + i];
        return 0;
    }
    }
    return ip_fail(e, "%s: unknown field type", p->name);
}

/* A path into a char[1024] surrounding field (at 0: the struct has none). */
static int place_path(void *task, size_t at, const char *s, const char *what, ip_err *e) {
    if (!at) return 0;
    size_t l = strlen(s);
    if (l >= 1024) return ip_fail_input(e, "%s is longer than 1023 characters", what);
    memcpy((char *)task + at - 1, s, l + 1);
    return 0;
}

static void place(void *task, size_t at, const void *v, size_t n) {
    if (at) memcpy((char *)task + at - 1, v, n);
}

int ip_task_place(const ip_task_def *d, void *task, const char *data, size_t train_limit, size_t test_limit,
                  const char *out, uint64_t seed, ip_err *e) {
    if (place_path(task, d->at_data, data ? data : "", "data.source", e) ||
        place_path(task, d->at_out, out ? out : "", "the output path", e))
        return -1;
    place(task, d->at_train_limit, &train_limit, sizeof train_limit);
    place(task, d->at_test_limit, &test_limit, sizeof test_limit);
    for (int i = 0; i < 2; i++) place(task, d->at_seed[i], &seed, sizeof seed);
    return 0;
}

int ip_task_place_resume(const ip_task_def *d, void *task, const char *state_path, double every, ip_err *e) {
    ip_resume *r = ip_task_resume(d, task);
    if (!r) return 0;
    size_t l = strlen(state_path ? state_path : "");
    if (l >= sizeof r->path) return ip_fail_input(e, "the task state path is longer than %zu characters", sizeof r->path - 1);
    memcpy(r->path, state_path ? state_path : "", l + 1);
    r->every = every;
    return 0;
}

ip_resume *ip_task_resume(const ip_task_def *d, void *task) {
    return d->at_resume ? (ip_resume *)((char *)task + d->at_resume - 1) : NULL;
}

uint64_t ip_task_ident(const ip_task_def *d, const void *task) {
    uint64_t h = ip_fnv1a(d->name);
    if (!d->at_resume) return ip_fnv1a_bytes(h, task, d->size);
    size_t at = d->at_resume - 1, end = at + sizeof(ip_resume);
    h = ip_fnv1a_bytes(h, task, at);
    return ip_fnv1a_bytes(h, (const char *)task + end, d->size - end);
}

void ip_task_defaults(const ip_task_def *d, void *task) {
    memset(task, 0, d->size);
    if (d->init) d->init(task);
    for (int i = 0; i < d->nparams; i++) {
        const ip_param *p = &d->params[i];
        if (!p->def) continue; /* required: no default */
        ip_value v;
        int32_t list[1 + IP_MAX_INT_LIST];
        if (ip_param_default(p, &v, list) == 0) ip_param_store(p, &v, task, NULL);
    }
}
