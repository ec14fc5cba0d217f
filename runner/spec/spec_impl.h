/* The spec loader's insides, shared by the files of runner/spec/ (its API:
 * spec.h; the user's reference: docs/spec.md). YAML -> overrides ->
 * validation (every error collected, with its location) -> expansion into the
 * task list. The keys of every task kind come from their tables
 * (core/tasks/, runner/kinds/); a value is parsed once, into an ip_value.
 *
 * Flow of rn_spec_load_text() (load.c):
 *   1. yt_parse() the text into a tree (yaml_tree.h);
 *   2. apply the --set overrides to the tree (overrides.c);
 *   3. validate: top-level keys (load.c), data, defaults, entries, names,
 *      references, cycles (sections.c); each key's value becomes a
 *      `setting`: its list of typed values (values.c);
 *   4. expand every entry (referenced entries first) into tasks: the
 *      cartesian product of its axes (a swept key, a zip group, or a model
 *      reference), last axis fastest (expand.c);
 *   5. fill every distinct task's core struct and run its kind's check (the
 *      signature's capacity, fake1's reference) (expand.c).
 * Any error anywhere -> -1 with every diagnostic, nothing allocated.
 * Diagnostics, the per-load pool and string sets: context.c. */
#ifndef RN_SPEC_IMPL_H
#define RN_SPEC_IMPL_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../core/model/model.h"
#include "../../core/tasks/tasks.h"
#include "../../core/util/arena.h"
#include "../../core/util/rng.h"
#include "../../core/util/strbuf.h"
#include "../kinds/kinds.h"
#include "spec.h"
#include "suggest.h"
#include "yaml_tree.h"

#define MAX_TASKS 4000000       /* a spec expanding to more is rejected (~250 bytes a task: ~1 GB) */
#define MAX_VALUE_LEN 1023      /* longest string value */
#define MAX_RANGE MAX_TASKS      /* values of one range */
#define MAX_REF_DEPTH 1000      /* entries in a chain of references */
#define MAX_DIAGS 200           /* diagnostics kept per load (then one "more errors" line) */
#define CKPT_NAME_MAX 160       /* checkpoint file name (without .h5) */
#define KEY_HASH_KEEP (RN_KEY_LEN - 1 - 17) /* chars kept before "~<16 hex>" in a long key */

/* A growable string: core/util/strbuf.h. */
typedef ip_strbuf sbuf;


typedef struct setting {
    const rn_key *key;
    int node;               /* the value node (for messages) */
    char path[256];         /* e.g. "models[0].seed", "defaults.models.zip.lr" */
    int group;              /* zip group (> 0): varies together with the group's other settings */
    ip_value *vals;         /* the values, parsed (their text normalised: canonical ints, true/false) */
    int *vnodes;            /* node of each value (a range's values: the range node) */
    int *refs;              /* a reference: entry index of each value (-1 unresolved) */
    int nvals;
    const ip_value *fin;    /* the values as tasks keep them (setting_final), NULL until first expanded */
} setting;

typedef struct setlist {
    setting *v;
    int n, cap;
} setlist;

typedef struct entry {
    const rn_kind *kind;    /* NULL when missing or unknown */
    int section, index;     /* SEC_MODELS or SEC_TASKS; index in the section */
    char path[48];          /* "models[2]" */
    const char *name;       /* NULL when missing or invalid */
    int node;
    setlist own, eff;       /* its own settings; with defaults merged */
    int bad;                /* has errors: not expanded */
    int color;              /* cycle search: 0 new, 1 on the stack, 2 done */
    int expanded;
    int counted;
    int threads;            /* `threads` of its tasks (its own, else its kind's default; 0: the rank's) */
    double count;           /* number of instances (-1: not expandable) */
    int *inst;              /* task ids of its instances */
    int ninst;
} entry;

typedef struct strset {
    char **v;
    size_t cap, n;
} strset;


typedef struct ctx {
    const char *file;
    rn_diags *diags;
    int first_diag;         /* index of the first diag of this load */
    int nerr, dropped;
    int oom;
    const rn_spec_opts *opts;
    const rn_override *ov;
    int nov;

    yt_doc doc;
    int root;

    void **pool;            /* every allocation below, freed at the end */
    int npool, cappool;

    rn_spec *s;
    int nkinds;
    int source_node, output_node;
    int data_ok;            /* data.source parsed: the input shape is known */
    char data_kind[32];
    int in_c, in_h, in_w, classes;

    setlist *defaults;      /* per kind (index in rn_kinds) */
    int *defaults_set;

    entry *ent;
    int nent;

    rn_task *tasks;
    int ntasks, captasks;
    int *task_entry;        /* entry index of each task */
    strset keys, ckpts;
    int *names;             /* hash of entry names -> entry index (-1 empty), names_cap slots */
    size_t names_cap;
    int *defaults_bad;      /* per kind: its defaults have errors (entries of the kind are not expanded) */
    int cur_entry;          /* the entry being expanded (-1: none), for the task-cap message */
    strset interned;        /* value texts in the spec's arena (shared by the tasks) */
    const ip_value *kdef[32]; /* per kind (index in rn_kinds): the default values, made once */
    setting protocol;       /* the top-level `protocol` (protocol.key NULL: not set) */
    int def_threads[32];    /* per kind: defaults.<kind>.threads (0: none) */
} ctx;

/* One step of a --set path: a key, or a list index. */
typedef struct ovstep {
    char name[128];
    int index;              /* >= 0: a list index */
} ovstep;

static inline yt_node *N(const ctx *c, int i) { return &c->doc.v[i]; }

/* The two sections of entries, in the order of top_names (after `defaults`). */
enum { SEC_MODELS = 0, SEC_TASKS = 1 };
#define TOP_SECTION 5 /* top_names[TOP_SECTION + SEC_*] names the section */

/* The kind of every entry of the `models` section (no other section holds it). */
static inline const rn_kind *models_kind(void) { return &rn_kind_train; }
static inline int is_models_kind(const rn_kind *k) { return k == models_kind(); }

/* The spec's own keys and top-level names (values.c checks them like the kinds' keys). */

static const char *const top_names[] = {"name",  "seed",  "output",           "data",    "defaults",
                                        "models", "tasks", "checkpoint_every", "protocol"};
#define NTOP ((int)(sizeof top_names / sizeof *top_names))

/* The spec's own keys (rows like the kinds', with fields of rn_spec). */
static const rn_key data_keys[] = {
    {"source", IP_P_STRING, IP_F_STR, offsetof(rn_spec, data_source), sizeof((rn_spec *)0)->data_source, NULL, 0, 0,
     0, NULL, NULL, "kind:path, kind = fashion-mnist, mnist, cifar10, cifar100 or synthetic (core/io/data.h)"},
    {"train_limit", IP_P_INT, IP_F_SIZE, offsetof(rn_spec, train_limit), sizeof(size_t), "0", 0, 0, 1e12, NULL, NULL,
     "use the first N training samples (0 = all)"},
    {"test_limit", IP_P_INT, IP_F_SIZE, offsetof(rn_spec, test_limit), sizeof(size_t), "0", 0, 0, 1e12, NULL, NULL,
     "use the first N test samples (0 = all)"},
};
#define NDATA ((int)(sizeof data_keys / sizeof *data_keys))
static const rn_key key_seed = {"seed", IP_P_INT, IP_F_NONE, 0, 0, "1", 1, 0, 9223372036854775807.0, NULL, NULL,
                                "spec seed"};
static const rn_key key_checkpoint_every = {
    "checkpoint_every", IP_P_FLOAT, IP_F_NONE, 0, 0, IP_CHECKPOINT_EVERY_TEXT, IP_CHECKPOINT_EVERY_DEFAULT, 1,
    IP_CHECKPOINT_EVERY_MAX, NULL, NULL,
    "seconds between the saves of a long task's state (docs/checkpoint.md); run --checkpoint-every overrides it"};
/* The top-level `protocol`: every entry whose kind has the key and does not
 * set it (nor its defaults) takes this one (merge_defaults). */
static const rn_key key_protocol = {"protocol", IP_P_ENUM, IP_F_NONE, 0, 0, IP_PROTOCOL_DEFAULT, 0, 0, 0,
                                    IP_PROTOCOL_CHOICES, NULL, IP_PROTOCOL_DOC};
/* An entry's `threads`: not a task key (it changes neither a task's key nor
 * its results, only how many threads run it), so it lives beside them. */
static const rn_key key_threads = {"threads", IP_P_INT, IP_F_NONE, 0, 0, "0", 0, 1, RN_MAX_THREADS, NULL, NULL,
                                   "threads the entry's tasks run with (default: the rank's --threads)"};
static const rn_key key_str = {"", IP_P_STRING, IP_F_NONE, 0, 0, "", 0, 0, 0, NULL, NULL, ""};


/* ---- functions shared by the files (each defined in one of them) ---- */
/* context.c */
void sfmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void did_you_mean(char *out, size_t cap, const char *word, const char *const *cands, int n);
void *palloc(ctx *c, size_t n);
char *pstrdup(ctx *c, const char *s);
void push_diag(rn_diags *d, const char *file, int line, int col, const char *origin, const char *path,
                      const char *msg);
int diags_full(const ctx *c);
void diag_ov(ctx *c, const char *file, int line, int col, const char *origin, const char *path,
                    const char *msg);
void diag_raw(ctx *c, const char *file, int line, int col, const char *path, const char *msg);
void ov_origin(const ctx *c, int oi, char *out, size_t cap);
void err_at(ctx *c, int node, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void oom_check(ctx *c);
int strset_add(ctx *c, strset *s, const char *str, int keep);
const char *intern(ctx *c, const char *text);
/* values.c */
int is_int_text(const char *s);
int is_num_text(const char *s, double *v);
const char *type_desc(const rn_key *k, char *buf, size_t cap);
const char *enum_suggest(const char *choices, const char *v, char *out, size_t cap);
void fmt_num(char *out, size_t cap, double v);
int typed_scalar(ctx *c, const rn_key *k, int node, const char *path, ip_value *out);
int setlist_init(ctx *c, setlist *l, int cap);
setting *setlist_find(setlist *l, const rn_key *k);
int setting_alloc(ctx *c, setting *s, int n);
char *canon_value(const rn_key *k, const ip_value *v);
int canon_cmp(const void *a, const void *b);
int check_repeats(ctx *c, setting *const *m, int nm, const char *zpath, int znode);
int parse_range(ctx *c, const rn_key *k, int node, const char *path, setting *s);
int parse_setting(ctx *c, const rn_key *k, int node, const char *path, int in_zip, setting *s);
int entry_key_names(const rn_kind *k, int with_name, int with_kind, int with_zip, const char **out);
void unknown_key(ctx *c, int keynode, const char *path, const char *const *cands, int n);
int add_setting(ctx *c, setlist *l, const setting *st);
int parse_zip(ctx *c, const rn_kind *k, int node, const char *path, int group, setlist *l);
int parse_threads(ctx *c, int node, const char *path);
/* overrides.c */
int parse_ov_path(const char *path, ovstep *st, int max);
void ov_fail(ctx *c, const rn_override *o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int map_set(ctx *c, int map, const char *key, int v, int origin);
int map_child_map(ctx *c, int map, const char *key, int origin);
int ov_value(ctx *c, const rn_override *o, int origin);
void apply_override(ctx *c, int oi);
/* sections.c */
void dup_walk(ctx *c, int node, const char *path, int depth);
int valid_name(const char *s);
int valid_spec_name(const char *s);
void check_source(ctx *c, int node, const char *src);
void check_data_files(ctx *c);
void do_data(ctx *c, int node);
int kind_index(const rn_kind *k);
int parse_keys(ctx *c, const rn_kind *k, int node, const char *path, int is_entry, int section,
                      int zip_group, setlist *out);
void do_defaults(ctx *c, int node);
void do_entry(ctx *c, entry *e);
void merge_defaults(ctx *c, entry *e);
size_t name_slot(const ctx *c, const char *name);
void index_names(ctx *c);
int find_entry(const ctx *c, const char *name);
void resolve_refs(ctx *c, entry *e);
void cycle_dfs(ctx *c, int i, int *stack, int depth);
/* expand.c */
rn_task *new_task(ctx *c);
void *salloc(ctx *c, size_t n);
const char *sstrdup(ctx *c, const char *s);
const ip_value *setting_final(ctx *c, setting *s);
const ip_value *kind_defaults(ctx *c, const rn_kind *k);
double shard_factor(ctx *c, entry *e, double instances);
double count_entry(ctx *c, int ei);
int set_key(ctx *c, rn_task *t, const char *full);
void set_checkpoint(ctx *c, rn_task *t, int ei, const char *subdir);
int emit_shards(ctx *c, int ei, int id, int S, const rn_ctx *rc);
void expand_entry(ctx *c, int ei);
void expand(ctx *c, int ei);
const setting *eff_find(const entry *e, const char *key);
void check_tasks(ctx *c);
/* load.c */
void default_name(char *out, size_t cap, const char *file);
void check_output(ctx *c);
void do_top(ctx *c);
void load_tree(ctx *c);
void sort_diags(ctx *c);
/* doc.c */
void doc_cell(FILE *f, const char *s);

#endif
