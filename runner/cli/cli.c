#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../spec/suggest.h"

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "ipsweep %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_ERROR;
}

void cli_help(const cli_cmd *c) {
    printf("usage: %s\n\n%s\n\noptions:\n", c->usage, c->summary);
    for (int i = 0; i < c->nopts; i++) {
        const cli_opt *o = &c->opts[i];
        char left[64];
        if (o->type == CLI_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "X");
        printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "--help", "show this help and exit");
}

static int set_value(const char *cmd, const cli_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_STR:
        if (strlen(v) >= o->cap) return cli_error(cmd, "--%s: value longer than %zu characters", o->name, o->cap - 1);
        memcpy(o->ptr, v, strlen(v) + 1);
        return CLI_OK;
    case CLI_LIST: {
        char *buf = o->ptr;
        size_t have = strlen(buf);
        if (have + (have > 0) + strlen(v) >= o->cap)
            return cli_error(cmd, "--%s: values longer than %zu characters in all", o->name, o->cap - 1);
        if (have) buf[have++] = ',';
        memcpy(buf + have, v, strlen(v) + 1);
        return CLI_OK;
    }
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (errno || *end || end == v || x < -2147483647L || x > 2147483647L)
            return cli_error(cmd, "--%s expects an integer, got \"%s\"", o->name, v);
        *(int *)o->ptr = (int)x;
        return CLI_OK;
    }
    case CLI_SIZE:
    case CLI_U64: {
        if (v[0] == '-') return cli_error(cmd, "--%s expects a non-negative integer, got \"%s\"", o->name, v);
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end || end == v) return cli_error(cmd, "--%s expects a non-negative integer, got \"%s\"", o->name, v);
        if (o->type == CLI_SIZE) *(size_t *)o->ptr = (size_t)x;
        else *(uint64_t *)o->ptr = (uint64_t)x;
        return CLI_OK;
    }
    case CLI_FLOAT: {
        float x = strtof(v, &end);
        if (errno || *end || end == v) return cli_error(cmd, "--%s expects a number, got \"%s\"", o->name, v);
        *(float *)o->ptr = x;
        return CLI_OK;
    }
    case CLI_FLAG:
        *(int *)o->ptr = 1;
        return CLI_OK;
    }
    return CLI_ERROR;
}

/* "unknown option "--epoch" (did you mean --epochs?)": the closest option name. */
static int unknown_option(const cli_cmd *c, const char *name, size_t len) {
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word ? len : sizeof word - 1), name);
    const char *cands[65];
    int n = 0;
    for (int k = 0; k < c->nopts && n < 64; k++) cands[n++] = c->opts[k].name;
    cands[n++] = "help";
    const char *s = rn_suggest(word, cands, n);
    if (s) return cli_error(c->name, "unknown option \"--%.*s\" (did you mean --%s?)", (int)len, name, s);
    return cli_error(c->name, "unknown option \"--%.*s\" (see --help)", (int)len, name);
}

int cli_parse(cli_cmd *c, int argc, char **argv) {
    c->npositional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_help(c);
            return CLI_HELP;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (c->npositional >= c->max_positional || c->npositional >= 4)
                return cli_error(c->name, "unexpected argument \"%s\" (see --help)", a);
            c->positional[c->npositional++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = NULL;
        for (int k = 0; k < c->nopts; k++)
            if (strlen(c->opts[k].name) == len && strncmp(c->opts[k].name, name, len) == 0) o = &c->opts[k];
        if (!o) return unknown_option(c, name, len);
        const char *v;
        if (o->type == CLI_FLAG) {
            if (eq) return cli_error(c->name, "--%s takes no value", o->name);
            v = "1";
        } else if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_error(c->name, "--%s needs a value", o->name);
            v = argv[++i];
        }
        int rc = set_value(c->name, o, v);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}
