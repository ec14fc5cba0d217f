/* Reading a journal for a resume (journal.h): the finished records, the
 * start counts, and the crash-twice rule. */
#include "journal_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* reading                                                                   */

typedef struct entry {
    char key[RN_KEY_LEN];
    int starts, alone, last_rank;
    int stopped;                 /* its last S/C/I line is an I: it was interrupted, not lost */
    int rec;                     /* index in recs, -1 */
} entry;

static entry *entries(const rn_journal_state *st) { return st->entries; }

static int index_find(const rn_journal_state *st, const char *key) {
    if (!st->index_cap) return -1;
    size_t k = (size_t)jn_key_hash(key) & (st->index_cap - 1);
    while (st->index[k]) {
        int i = st->index[k] - 1;
        if (strcmp(entries(st)[i].key, key) == 0) return i;
        k = (k + 1) & (st->index_cap - 1);
    }
    return -1;
}

static int index_put(rn_journal_state *st, const char *key, int i) {
    if (2 * ((size_t)st->nentries + 1) > st->index_cap) {
        size_t nc = st->index_cap ? 2 * st->index_cap : 1024;
        int *ni = calloc(nc, sizeof *ni);
        if (!ni) return -1;
        for (int k = 0; k < st->nentries; k++) {
            size_t s = (size_t)jn_key_hash(entries(st)[k].key) & (nc - 1);
            while (ni[s]) s = (s + 1) & (nc - 1);
            ni[s] = k + 1;
        }
        free(st->index);
        st->index = ni;
        st->index_cap = nc;
    }
    size_t s = (size_t)jn_key_hash(key) & (st->index_cap - 1);
    while (st->index[s]) s = (s + 1) & (st->index_cap - 1);
    st->index[s] = i + 1;
    return 0;
}

/* The entry of key, created when absent; -1 on OOM. */
static int entry_get(rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    if (i >= 0) return i;
    if (st->nentries == st->capentries) {
        int nc = st->capentries ? 2 * st->capentries : 256;
        entry *ne = realloc(st->entries, (size_t)nc * sizeof *ne);
        if (!ne) return -1;
        st->entries = ne;
        st->capentries = nc;
    }
    i = st->nentries;
    entry *en = &entries(st)[i];
    snprintf(en->key, sizeof en->key, "%s", key);
    en->starts = 0, en->alone = 0, en->last_rank = -1, en->rec = -1, en->stopped = 0;
    /* the index is sized for nentries + 1 before the entry is counted */
    if (index_put(st, key, i)) return -1;
    st->nentries++;
    return i;
}

/* Room for one more record at st->recs[st->nrecs]. */
static int recs_reserve(rn_journal_state *st, int *cap) {
    if (st->nrecs < *cap) return 0;
    int nc = *cap ? 2 * *cap : 64;
    rn_record *nr = realloc(st->recs, (size_t)nc * sizeof *nr);
    if (!nr) return -1;
    st->recs = nr;
    *cap = nc;
    return 0;
}

typedef struct read_ctx {
    rn_journal_state *st;
    const char *path;
    int reccap;
} read_ctx;

static int read_line(void *vctx, char *p, size_t len, long lineno, ip_err *e) {
    (void)len;
    read_ctx *c = vctx;
    rn_journal_state *st = c->st;
    /* an F line is parsed in place at the end of recs (records are big: no copies) */
    if (p[0] == 'F' && recs_reserve(st, &c->reccap)) return ip_fail(e, "out of memory reading %s", c->path);
    rn_record *r = p[0] == 'F' ? &st->recs[st->nrecs] : NULL;
    jn_line l;
    int rc = jn_parse_line(p, &l, r, c->path, lineno, e);
    if (rc != 0 || l.type == 'D') return rc;
    int i = entry_get(st, r ? r->key : l.key);
    if (i < 0) {
        if (r) rn_record_free(r);
        return ip_fail(e, "out of memory reading %s", c->path);
    }
    entry *en = &entries(st)[i];
    if (l.type == 'I') { /* an orderly stop: what came before was no crash */
        en->alone = 0;
        en->stopped = 1;
        return 0;
    }
    if (!r) { /* S, C */
        en->stopped = 0;
        en->starts += l.starts;
        en->alone += l.alone;
        en->last_rank = l.rank;
        return 0;
    }
    if (en->rec >= 0) { /* the last record wins */
        jn_record_release(&st->recs[en->rec]);
        memcpy(&st->recs[en->rec], r, sizeof *r);
        return 0;
    }
    en->rec = st->nrecs++;
    return 0;
}

static int build_unfinished(rn_journal_state *st) {
    free(st->unfinished);
    st->unfinished = NULL;
    st->nunfinished = 0;
    int n = 0;
    for (int i = 0; i < st->nentries; i++) n += entries(st)[i].rec < 0 && entries(st)[i].starts > 0;
    if (!n) return 0;
    st->unfinished = malloc((size_t)n * sizeof *st->unfinished);
    if (!st->unfinished) return -1;
    for (int i = 0; i < st->nentries; i++) {
        const entry *en = &entries(st)[i];
        if (en->rec >= 0 || en->starts <= 0) continue;
        rn_unfinished *u = &st->unfinished[st->nunfinished++];
        memcpy(u->key, en->key, sizeof u->key);
        u->starts = en->starts;
        u->alone = en->alone;
        u->last_rank = en->last_rank;
    }
    return 0;
}

void rn_journal_state_free(rn_journal_state *st) {
    if (!st) return;
    for (int i = 0; i < st->nrecs; i++) jn_record_release(&st->recs[i]);
    free(st->recs);
    free(st->unfinished);
    free(st->index);
    free(st->entries);
    memset(st, 0, sizeof *st);
}

int rn_journal_read(const char *output, uint64_t spec_hash, rn_journal_state *st, ip_err *e) {
    memset(st, 0, sizeof *st);
    char path[1100];
    if (!output || rn_journal_path(path, sizeof path, output)) return ip_fail(e, "results path too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ip_fail(e, "cannot open journal %s: %s", path, strerror(errno));
    char *buf;
    size_t len, valid;
    int rc = jn_slurp(fd, &buf, &len);
    int sv = errno;
    close(fd);
    if (rc) return ip_fail(e, "cannot read journal %s: %s", path, strerror(sv));
    read_ctx c = {st, path, 0};
    int torn;
    numloc nl;
    jn_numloc_enter(&nl);
    rc = jn_scan(buf, len, path, spec_hash, read_line, &c, &valid, &torn, NULL, e);
    jn_numloc_leave(&nl);
    free(buf);
    if (rc == 0 && build_unfinished(st)) rc = ip_fail(e, "out of memory reading %s", path);
    if (rc) {
        rn_journal_state_free(st);
        return rc < 0 ? rc : -1;
    }
    st->torn = torn;
    st->valid_bytes = (long long)valid;
    return 0;
}

const rn_record *rn_journal_state_find(const rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    return i >= 0 && entries(st)[i].rec >= 0 ? &st->recs[entries(st)[i].rec] : NULL;
}

int rn_journal_state_starts(const rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    return i >= 0 ? entries(st)[i].starts : 0;
}

int rn_journal_state_lost(const rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    return i >= 0 && entries(st)[i].starts > 0 && !entries(st)[i].stopped;
}

int rn_journal_fail_crashed(rn_journal *j, rn_journal_state *st, ip_err *e) {
    int n = 0;
    for (int i = 0; i < st->nunfinished; i++) n += st->unfinished[i].alone >= RN_CRASH_LIMIT;
    if (!n) return 0;
    rn_record *tmp = calloc((size_t)n, sizeof *tmp);
    const rn_record **ptr = calloc((size_t)n, sizeof *ptr);
    int rc = -1;
    if (!tmp || !ptr) {
        ip_fail(e, "out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < st->nunfinished; i++) {
        const rn_unfinished *u = &st->unfinished[i];
        if (u->alone < RN_CRASH_LIMIT) continue;
        rn_record_init(&tmp[k]);
        memcpy(tmp[k].key, u->key, sizeof u->key);
        tmp[k].status = RN_FAILED;
        tmp[k].rank = u->last_rank;
        tmp[k].attempts = u->starts;
        snprintf(tmp[k].error, sizeof tmp[k].error, "%s", RN_CRASH_ERROR);
        ptr[k] = &tmp[k];
        k++;
    }
    if (rn_journal_finish_many(j, ptr, n, e)) goto done;
    /* grow recs to hold them, then move them in */
    rn_record *nr = realloc(st->recs, (size_t)(st->nrecs + n) * sizeof *nr);
    if (!nr) {
        ip_fail(e, "out of memory");
        goto done;
    }
    st->recs = nr;
    for (k = 0; k < n; k++) {
        int i = index_find(st, tmp[k].key);
        if (i < 0) continue; /* cannot happen: unfinished keys have entries */
        st->recs[st->nrecs] = tmp[k];
        entries(st)[i].rec = st->nrecs++;
    }
    if (build_unfinished(st)) {
        ip_fail(e, "out of memory");
        goto done;
    }
    rc = n;
done:
    free(tmp); /* no arrays in these records */
    free(ptr);
    return rc;
}

