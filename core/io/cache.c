/* The process's cache of datasets and read-only checkpoints (cache.h).
 *
 * A few dozen entries at most (the test split, its normalised copies, the
 * checkpoints a worker's tasks open), so a list searched linearly is enough.
 * Every entry owns a master that is only ever copied from, never handed out;
 * misses load into the caller's object exactly as an uncached load would and
 * the master is a copy of that, so a cold task does what it did before the
 * cache existed. */
#include "cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../model/train.h"
#include "ckpt.h"

/* What identifies the contents of a file without reading it. ctime too: a
 * file rewritten in place within mtime's resolution still moves its ctime. */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_id;

typedef enum { ENT_DATA, ENT_NORM, ENT_MODEL } ent_kind;

/* An accuracy remembered for a model entry (ip_cache_evaluate). */
typedef struct memo {
    uint64_t data_serial; /* the dataset entry it was computed on */
    int branch, batch;
    double acc;
} memo;

typedef struct entry {
    struct entry *next;
    ent_kind kind;
    char *key;
    uint64_t serial; /* unique for the process's life: memos name their dataset by it */
    uint64_t last;   /* LRU clock */
    size_t bytes;
    int nfiles;
    file_id ids[5];
    ip_dataset data;      /* ENT_DATA, ENT_NORM */
    ip_model *model;      /* ENT_MODEL: built and loaded, never planned */
    ip_model_cfg cfg;     /* ENT_MODEL: ip_ckpt_read_cfg's, what copies are built from */
    memo *memos;
    size_t nmemo, capmemo;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *head;
static size_t budget, used;
static uint64_t clock_, serials;
static ip_cache_stats stats;

static int stat_id(const char *path, file_id *id) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    memset(id, 0, sizeof *id);
    id->dev = st.st_dev, id->ino = st.st_ino, id->size = st.st_size;
    id->mtime = st.st_mtim, id->ctime = st.st_ctim;
    return 0;
}

static int same_id(const file_id *a, const file_id *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* The identities of a split's files (none for a synthetic source); -1 when
 * they cannot be listed or stat'ed: the caller then loads without the cache
 * and gets the loader's own error. */
static int data_ids(const char *source, ip_split split, file_id *ids, int *n) {
    ip_data_file_list *fl = malloc(sizeof *fl);
    if (!fl) return -1;
    ip_err ignored;
    int rc = ip_data_files(source, split, fl, &ignored);
    for (int i = 0; rc == 0 && i < fl->n; i++) rc = stat_id(fl->path[i], &ids[i]);
    *n = rc == 0 ? fl->n : 0;
    free(fl);
    return rc;
}

static int same_ids(const entry *x, const file_id *ids, int n) {
    if (x->nfiles != n) return 0;
    for (int i = 0; i < n; i++)
        if (!same_id(&x->ids[i], &ids[i])) return 0;
    return 1;
}

static void entry_free(entry *x) {
    if (!x) return;
    ip_data_free(&x->data);
    if (x->model) ip_model_free(x->model);
    free(x->model);
    free(x->memos);
    free(x->key);
    free(x);
}

static void unlink_entry(entry *x) {
    for (entry **p = &head; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            used -= x->bytes;
            stats.entries--;
            entry_free(x);
            return;
        }
}

static entry *find(ent_kind kind, const char *key) {
    for (entry *x = head; x; x = x->next)
        if (x->kind == kind && strcmp(x->key, key) == 0) return x;
    return NULL;
}

/* Drops least recently used entries until `more` bytes fit the budget. */
static void make_room(size_t more) {
    while (head && used + more > budget) {
        entry *lru = head;
        for (entry *x = head->next; x; x = x->next)
            if (x->last < lru->last) lru = x;
        stats.evictions++;
        unlink_entry(lru);
    }
}

/* Takes x into the cache (replacing an entry of the same key), or frees it
 * when it does not fit the budget at all. */
static void insert(entry *x) {
    entry *old = find(x->kind, x->key);
    if (old) unlink_entry(old);
    if (budget == 0 || x->bytes > budget) {
        entry_free(x);
        return;
    }
    make_room(x->bytes);
    x->serial = ++serials;
    x->last = ++clock_;
    x->next = head;
    head = x;
    used += x->bytes;
    stats.entries++;
}

/* A lookup: the entry of key when its files are unchanged (a changed one is
 * dropped). */
static entry *lookup(ent_kind kind, const char *key, const file_id *ids, int n) {
    entry *x = find(kind, key);
    if (x && !same_ids(x, ids, n)) {
        stats.stale++;
        unlink_entry(x);
        x = NULL;
    }
    if (x) {
        x->last = ++clock_;
        stats.hits++;
    } else
        stats.misses++;
    return x;
}

static entry *new_entry(ent_kind kind, const char *key, const file_id *ids, int n) {
    entry *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->kind = kind;
    x->key = strdup(key);
    if (!x->key) {
        free(x);
        return NULL;
    }
    x->nfiles = n;
    memcpy(x->ids, ids, (size_t)n * sizeof *ids);
    return x;
}

static size_t data_bytes(const ip_dataset *d) {
    return d->n * ((size_t)d->c * d->h * d->w * sizeof(float) + sizeof(int32_t));
}

/* Keeps a copy of d under key (a failure to copy only means no entry). */
static void keep_data(ent_kind kind, const char *key, const ip_dataset *d, const file_id *ids, int n) {
    if (data_bytes(d) > budget) return;
    entry *x = new_entry(kind, key, ids, n);
    ip_err ignored;
    if (!x || ip_data_copy(&x->data, d, &ignored) != 0) {
        entry_free(x);
        return;
    }
    x->bytes = data_bytes(d);
    insert(x);
}

void ip_cache_configure(size_t max_bytes) {
    pthread_mutex_lock(&lock);
    budget = max_bytes;
    make_room(0);
    pthread_mutex_unlock(&lock);
}

size_t ip_cache_budget(void) {
    pthread_mutex_lock(&lock);
    size_t b = budget;
    pthread_mutex_unlock(&lock);
    return b;
}

void ip_cache_clear(void) {
    pthread_mutex_lock(&lock);
    while (head) unlink_entry(head);
    pthread_mutex_unlock(&lock);
}

void ip_cache_get_stats(ip_cache_stats *s) {
    pthread_mutex_lock(&lock);
    *s = stats;
    s->bytes = used;
    pthread_mutex_unlock(&lock);
}

/* ---------------------------------------------------------- datasets --- */

static void data_key(char *key, size_t cap, const char *source, ip_split split, size_t limit) {
    snprintf(key, cap, "%d|%zu|%s", (int)split, limit, source);
}

int ip_cache_data_load(ip_dataset *d, const char *source, ip_split split, size_t limit, ip_err *e) {
    file_id before[5], after[5];
    int n = 0, n2 = 0;
    char key[1200];
    if (ip_cache_budget() == 0 || data_ids(source, split, before, &n) != 0)
        return ip_data_load(d, source, split, limit, e);
    data_key(key, sizeof key, source, split, limit);
    pthread_mutex_lock(&lock);
    entry *x = lookup(ENT_DATA, key, before, n);
    int rc = x ? ip_data_copy(d, &x->data, e) : 1;
    pthread_mutex_unlock(&lock);
    if (rc <= 0) return rc;
    if (ip_data_load(d, source, split, limit, e) != 0) return -1;
    /* unchanged while it was read: else the next task reads it again */
    if (data_ids(source, split, after, &n2) == 0 && n2 == n && memcmp(before, after, (size_t)n * sizeof *before) == 0) {
        pthread_mutex_lock(&lock);
        keep_data(ENT_DATA, key, d, before, n);
        pthread_mutex_unlock(&lock);
    }
    return 0;
}

int ip_cache_data_for_model(ip_dataset *d, const char *source, ip_split split, size_t limit, const ip_model *m,
                            ip_err *e) {
    file_id before[5], after[5];
    int n = 0, n2 = 0;
    char key[1400], dk[1200];
    if (ip_cache_budget() == 0 || data_ids(source, split, before, &n) != 0) {
        if (ip_data_load(d, source, split, limit, e) != 0) return -1;
        return ip_data_match_model(d, m, e);
    }
    /* the statistics' bits: equal keys mean ip_data_match_model computed the same pixels */
    uint32_t bits[8];
    memcpy(bits, m->cfg.in_mean, sizeof m->cfg.in_mean);
    memcpy(bits + 4, m->cfg.in_std, sizeof m->cfg.in_std);
    data_key(dk, sizeof dk, source, split, limit);
    snprintf(key, sizeof key, "%08x%08x%08x%08x%08x%08x%08x%08x|%s", bits[0], bits[1], bits[2], bits[3], bits[4],
             bits[5], bits[6], bits[7], dk);
    pthread_mutex_lock(&lock);
    entry *x = lookup(ENT_NORM, key, before, n);
    int rc = x ? ip_data_copy(d, &x->data, e) : 1;
    pthread_mutex_unlock(&lock);
    if (rc < 0) return -1;
    if (rc == 0) /* already normalised with m's statistics: this checks m's shape and classes only */
        return ip_data_match_model(d, m, e);
    if (ip_cache_data_load(d, source, split, limit, e) != 0) return -1;
    if (ip_data_match_model(d, m, e) != 0) return -1;
    if (data_ids(source, split, after, &n2) == 0 && n2 == n && memcmp(before, after, (size_t)n * sizeof *before) == 0) {
        pthread_mutex_lock(&lock);
        keep_data(ENT_NORM, key, d, before, n);
        pthread_mutex_unlock(&lock);
    }
    return 0;
}

/* ------------------------------------------------------- checkpoints --- */

static size_t model_bytes(const ip_model *m) {
    /* params and grads (ip_model_build allocates both), buffers, the trigger set */
    return (2 * m->nparams + m->nbufs) * sizeof(float) + data_bytes(&m->trigger);
}

int ip_cache_open_model(ip_model *m, const char *path, ip_err *e) {
    file_id before, after;
    if (ip_cache_budget() == 0 || !path || stat_id(path, &before) != 0) return ip_ckpt_open_model(m, path, e);
    char key[1100];
    snprintf(key, sizeof key, "%s", path);
    pthread_mutex_lock(&lock);
    entry *x = lookup(ENT_MODEL, key, &before, 1);
    int rc = x ? ip_ckpt_copy_loaded(m, x->model, &x->cfg, e) : 1;
    pthread_mutex_unlock(&lock);
    if (rc <= 0) return rc;
    /* a miss: the caller's model is loaded as without the cache, the master is a copy of it */
    if (ip_ckpt_open_model(m, path, e) != 0) return -1;
    ip_err ignored;
    ip_model_cfg cfg;
    if (ip_ckpt_read_cfg(path, &cfg, &ignored) != 0 || stat_id(path, &after) != 0 || !same_id(&before, &after) ||
        model_bytes(m) > ip_cache_budget())
        return 0;
    entry *nx = new_entry(ENT_MODEL, key, &before, 1);
    if (!nx || !(nx->model = calloc(1, sizeof *nx->model)) ||
        ip_ckpt_copy_loaded(nx->model, m, &cfg, &ignored) != 0) {
        if (nx) free(nx->model), nx->model = NULL;
        entry_free(nx);
        return 0;
    }
    nx->cfg = cfg;
    nx->bytes = model_bytes(nx->model);
    pthread_mutex_lock(&lock);
    insert(nx);
    pthread_mutex_unlock(&lock);
    return 0;
}

/* ------------------------------------------------- remembered accuracy --- */

/* Everything an evaluation-mode forward pass reads of a model (model.h):
 * its configuration (arch, norm, scheme, passport layers, input statistics,
 * protocol, conv algorithm), parameters, buffers (running statistics and
 * passport keys), signature bits and batch-norm settings. Compared whole
 * (memcmp): two models built from one stored configuration have the same
 * bytes, and a false "different" only costs a forward pass. */
static int same_model(const ip_model *a, const ip_model *b) {
    if (memcmp(&a->cfg, &b->cfg, sizeof a->cfg) != 0 || a->nparams != b->nparams || a->nbufs != b->nbufs ||
        a->npassports != b->npassports || a->nops != b->nops || a->bn_eps != b->bn_eps ||
        a->bn_momentum != b->bn_momentum)
        return 0;
    if (memcmp(a->params, b->params, a->nparams * sizeof(float)) != 0) return 0;
    if (memcmp(a->bufs, b->bufs, a->nbufs * sizeof(float)) != 0) return 0;
    for (int i = 0; i < a->npassports; i++)
        if (a->passports[i].cout != b->passports[i].cout ||
            memcmp(a->passports[i].bits, b->passports[i].bits, (size_t)a->passports[i].cout) != 0)
            return 0;
    return 1;
}

static int same_data(const ip_dataset *a, const ip_dataset *b) {
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w || a->classes != b->classes ||
        a->normalised != b->normalised || memcmp(a->mean, b->mean, sizeof a->mean) != 0 ||
        memcmp(a->std, b->std, sizeof a->std) != 0)
        return 0;
    return memcmp(a->x, b->x, a->n * (size_t)a->c * a->h * a->w * sizeof(float)) == 0 &&
           memcmp(a->y, b->y, a->n * sizeof(int32_t)) == 0;
}

/* The entries whose masters equal m and d (by content), as serials (0: none). */
static void match_entries(const ip_model *m, const ip_dataset *d, uint64_t *ms, uint64_t *ds) {
    *ms = *ds = 0;
    for (entry *x = head; x && !*ms; x = x->next)
        if (x->kind == ENT_MODEL && same_model(x->model, m)) *ms = x->serial;
    if (!*ms) return; /* nothing to remember it under: spare the dataset's comparison */
    for (entry *x = head; x && !*ds; x = x->next)
        if (x->kind != ENT_MODEL && same_data(&x->data, d)) *ds = x->serial;
}

static entry *by_serial(uint64_t s) {
    for (entry *x = head; x; x = x->next)
        if (x->serial == s) return x;
    return NULL;
}

/* ip_evaluate in passes of exactly ip_infer_batch(m, batch) images (m re-planned when its plan is smaller). */
static int evaluate_at(ip_model *m, const ip_dataset *d, int batch, double *acc, ip_err *e) {
    int pass = ip_infer_batch(m, batch);
    if (m->batch < pass && ip_model_plan(m, pass, e) != 0) return -1;
    return ip_evaluate(m, d, batch, acc, e);
}

int ip_cache_evaluate(ip_model *m, const ip_dataset *d, int batch, double *acc, ip_err *e) {
    if (batch < 1) return ip_fail(e, "evaluation batch %d", batch);
    if (ip_cache_budget() == 0) return evaluate_at(m, d, batch, acc, e);
    const int eff = ip_infer_batch(m, batch); /* what the result depends on */
    uint64_t ms, ds;
    pthread_mutex_lock(&lock);
    match_entries(m, d, &ms, &ds);
    entry *x = ms && ds ? by_serial(ms) : NULL;
    for (size_t i = 0; x && i < x->nmemo; i++) {
        const memo *q = &x->memos[i];
        if (q->data_serial == ds && q->branch == (int)m->branch && q->batch == eff) {
            *acc = q->acc;
            stats.memo_hits++;
            pthread_mutex_unlock(&lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&lock);
    if (evaluate_at(m, d, batch, acc, e) != 0) return -1;
    if (!ms || !ds) return 0;
    pthread_mutex_lock(&lock);
    x = by_serial(ms); /* still there? (another thread may have evicted it) */
    if (x && by_serial(ds)) {
        if (x->nmemo == x->capmemo) {
            size_t cap = x->capmemo ? 2 * x->capmemo : 4;
            memo *p = realloc(x->memos, cap * sizeof *p);
            if (p) x->memos = p, x->capmemo = cap;
        }
        if (x->nmemo < x->capmemo) x->memos[x->nmemo++] = (memo){ds, (int)m->branch, eff, *acc};
    }
    pthread_mutex_unlock(&lock);
    return 0;
}
