/* Which run a journal belongs to: the spec hash of its header, the
 * settings of its "D" line, and the explanation of a refused resume. */
#include "journal_impl.h"

#include "../../core/util/rng.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* hashing, paths                                                            */

uint64_t rn_journal_hash_bytes(uint64_t h, const void *data, size_t n) { return ip_fnv1a_bytes(h, data, n); }

static uint64_t hash_str(uint64_t h, const char *s) {
    return rn_journal_hash_bytes(h, s ? s : "", (s ? strlen(s) : 0) + 1); /* with the NUL: unambiguous */
}

static uint64_t hash_int(uint64_t h, long long v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    return rn_journal_hash_bytes(h, b, (size_t)n + 1);
}

/* The settings beyond the task list that every result depends on, as the
 * journal's "D" line records them (one home: the hash, the line and the
 * explanation of a refused resume all use this list). */
#define RN_NSETTINGS 4
static const char *const setting_names[RN_NSETTINGS] = {"seed", "data.source", "data.train_limit", "data.test_limit"};

static void settings_of(const rn_spec *s, char v[RN_NSETTINGS][1100]) {
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)s->seed);
    snprintf(v[1], sizeof v[1], "%s", s->data_source);
    snprintf(v[2], sizeof v[2], "%zu", s->train_limit);
    snprintf(v[3], sizeof v[3], "%zu", s->test_limit);
}

uint64_t rn_journal_spec_hash(const rn_spec *s) {
    uint64_t h = RN_HASH_INIT;
    h = hash_str(h, "ipsweep-spec-2");
    h = hash_str(h, s->text);
    h = hash_str(h, s->name);
    h = hash_int(h, (long long)s->seed);
    /* the effective settings (after --set): the spec text alone does not have the overrides */
    char v[RN_NSETTINGS][1100];
    settings_of(s, v);
    for (int i = 0; i < RN_NSETTINGS; i++) h = hash_str(h, v[i]);
    h = hash_int(h, s->ntasks);
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        h = hash_str(h, t->key);
        h = hash_str(h, t->kind);
        h = hash_str(h, t->name);
        const char *pn, *pv;
        int sw, np = 0;
        while (rn_task_param(t, np, &pn, &pv, &sw) == 0) np++;
        h = hash_int(h, np);
        for (int k = 0; k < np && rn_task_param(t, k, &pn, &pv, &sw) == 0; k++) {
            h = hash_str(h, pn);
            h = hash_str(h, pv);
            h = hash_int(h, sw);
        }
        h = hash_int(h, t->ndeps);
        for (int k = 0; k < t->ndeps; k++) h = hash_int(h, t->deps[k]);
    }
    return h;
}

int rn_journal_path(char *out, size_t cap, const char *output) {
    int n = snprintf(out, cap, "%s.journal", output);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

uint64_t jn_key_hash(const char *key) {
    uint64_t h = rn_journal_hash_bytes(RN_HASH_INIT, key, strlen(key));
    return h ? h : 1;
}

/* ------------------------------------------------------------------------- */
/* settings                                                                  */

int rn_journal_note_settings(rn_journal *j, const rn_spec *spec, ip_err *e) {
    char v[RN_NSETTINGS][1100];
    settings_of(spec, v);
    sbuf b = {j->buf, 0, j->cap, 0};
    ip_strbuf_put(&b, "D", 1);
    for (int i = 0; i < RN_NSETTINGS; i++) {
        ip_strbuf_ch(&b, '\t');
        jn_sb_esc(&b, setting_names[i]);
        ip_strbuf_ch(&b, '\t');
        jn_sb_esc(&b, v[i]);
    }
    jn_sb_end_line(&b, 0);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    return jn_append_lines(j, b.p, b.len, 1, e);
}

int rn_journal_explain_change(const char *output, const rn_spec *spec, char *msg, size_t cap) {
    char path[1100];
    if (!output || rn_journal_path(path, sizeof path, output)) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char *buf;
    size_t len;
    int rc = jn_slurp(fd, &buf, &len);
    close(fd);
    if (rc) return 0;
    char v[RN_NSETTINGS][1100];
    settings_of(spec, v);
    int found = 0;
    size_t used = 0;
    if (cap) msg[0] = 0;
    for (size_t pos = 0; pos < len;) { /* the first valid "D" line */
        char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) break;
        size_t n = (size_t)(nl - (buf + pos));
        long pl = jn_line_payload(buf + pos, n);
        char *p = buf + pos;
        pos += n + 1;
        if (pl < 2 || p[0] != 'D' || p[1] != '\t') continue;
        p[pl] = 0;
        fields f = {p + 2, 1};
        while (f.cur) { /* every setting that changed, "; "-separated */
            char name[64], was[1100];
            if (jn_text_field(&f, name, sizeof name) || jn_text_field(&f, was, sizeof was)) break;
            for (int i = 0; i < RN_NSETTINGS; i++)
                if (strcmp(name, setting_names[i]) == 0 && strcmp(was, v[i]) != 0 && used < cap) {
                    int n = snprintf(msg + used, cap - used, "%s%s is %.300s but the run was started with %.300s",
                                     found ? "; " : "", name, v[i], was);
                    used = n < 0 ? cap : used + (size_t)n;
                    found = 1;
                }
        }
        break;
    }
    free(buf);
    return found;
}
