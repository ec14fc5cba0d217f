/* Task parameters: the one home of every key of every task kind.
 *
 * Each task kind (train, eval, prune, fake1, ...) has a core task struct
 * (ip_train_task, ...) and a table of ip_param rows, one per key a spec, the
 * `ipsweep task KIND --key value` command line or `ipsweep train/eval` can set.
 * A row says what the user writes (type, bounds, choices, doc), its only
 * default, and where the value lands in the task struct (offset and C type).
 * Everything else derives from the rows: the spec loader's validation and
 * docs/spec.md, the command-line options, the struct defaults, the generic
 * fill of the struct from typed values, and the type of the results columns.
 *
 * Values travel typed (ip_value): parsed once, where they are read (a YAML
 * scalar, a command-line argument), and stored into the struct without
 * becoming text again. Each value also keeps the text it was written as, for
 * what shows it to people: task keys and the results file's parameter columns.
 *
 * Adding a key = one row (P_INT(...), P_FLOAT(...), ...) in the kind's file
 * under core/tasks/. */
#ifndef IP_TASK_PARAM_H
#define IP_TASK_PARAM_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "../model/model.h" /* ip_protocol */
#include "../model/train.h" /* IP_INFER_BATCH */
#include "../util/err.h"
#include "../util/metrics.h"

/* What the user writes. */
typedef enum {
    IP_P_INT,         /* integer in [min, max] */
    IP_P_FLOAT,       /* number in [min, max] */
    IP_P_STRING,      /* free text (at most the field's size - 1 bytes) */
    IP_P_BOOL,        /* true / false */
    IP_P_ENUM,        /* one of `choices` ("a|b|c") */
    IP_P_MODEL,       /* a model: in a spec the name of an entry producing one; on a command line a checkpoint path */
    IP_P_FINGERPRINT, /* a fingerprint: an entry name in a spec, a fingerprint file on a command line */
    IP_P_INTLIST,     /* "a,b,c": strictly increasing integers in [min, max], at most IP_MAX_INT_LIST */
    /* Sets of models, relative to the task's own `model` key (a defender's
     * surrogates and reference models). In a spec: an entry name or a list of
     * them; unlike IP_P_MODEL they do not sweep: each task takes every
     * instance that stands in the relation to its `model`, all at once (at
     * most IP_MAX_MODEL_SET). On a command line: checkpoint paths separated
     * by IP_PATH_SET_SEP. */
    IP_P_COPIES,      /* the instances that derive from the task's model (its dependencies lead to it) */
    IP_P_OTHERS       /* the instances that neither are the task's model nor derive from it */
} ip_ptype;

/* A reference to other tasks' output (its instances become dependencies in a spec). */
#define IP_P_IS_SET(type) ((type) == IP_P_COPIES || (type) == IP_P_OTHERS)
#define IP_P_IS_REF(type) ((type) == IP_P_MODEL || (type) == IP_P_FINGERPRINT || IP_P_IS_SET(type))
#define IP_MAX_MODEL_SET 16
/* The one rule of a set's stored form: its paths joined by this character
 * (the runner's checkpoint paths never contain it: the spec loader refuses an
 * output directory that does). */
#define IP_PATH_SET_SEP ','
#define IP_MAX_INT_LIST 8

/* The C type of the struct field a value lands in. */
typedef enum {
    IP_F_NONE,        /* not stored: the key only names the task (a repetition seed: the task's RNG seed derives from its key) */
    IP_F_INT,         /* int; BOOL as 0/1, ENUM as the choice's value (ip_param.values, or its index) */
    IP_F_SIZE,        /* size_t */
    IP_F_U64,         /* uint64_t */
    IP_F_FLOAT,       /* float */
    IP_F_DOUBLE,      /* double */
    IP_F_STR,         /* char[size]: STRING, ENUM (the choice's name), MODEL/FINGERPRINT (the path) */
    IP_F_MILESTONES   /* INTLIST into an ip_optim_cfg at offset (milestones[], nmilestones) */
} ip_ftype;

typedef struct ip_param {
    const char *name;
    ip_ptype type;
    ip_ftype field;
    size_t offset, size;     /* the field in the task struct */
    const char *def;         /* the default as written ("0.01", "sgd", "true"); NULL = required */
    double defnum;           /* INT / FLOAT / BOOL: the default's value (from the same literal as def) */
    double min, max;         /* INT / FLOAT / INTLIST items (inclusive) */
    const char *choices;     /* ENUM: "a|b|c" */
    const int *values;       /* ENUM into an int: the C value of each choice (NULL: its index) */
    const char *doc;         /* one line: docs/spec.md, --help, error messages */
} ip_param;

/* A parsed value. `text` is how it was written (numbers as written, bools
 * "true"/"false", references: the referenced task's key in a spec, the path
 * on a command line); the union holds the typed value. */
typedef struct ip_value {
    const char *text;
    union {
        int64_t i;           /* INT; BOOL 0/1; ENUM: index in choices */
        double f;            /* FLOAT */
        const char *s;       /* STRING; MODEL/FINGERPRINT: the file path ("" = none); a set: paths joined by IP_PATH_SET_SEP */
        const int32_t *list; /* INTLIST: list[0] = n, then the n items */
    } u;
} ip_value;

/* What a check may need to know of the data: one sample's shape and the
 * number of classes. */
typedef struct ip_input_shape {
    int c, h, w, classes;
} ip_input_shape;

/* Where the task struct takes what every task gets from its surroundings
 * rather than from keys: IP_AT(struct, field) is the field's offset + 1, so
 * 0 (a field a definition leaves out) means the struct has none. */
#define IP_AT(S, FIELD) (offsetof(S, FIELD) + 1)
/* A kind's rows and their count, in a definition: IP_ROWS(train_params). */
#define IP_ROWS(rows) .params = (rows), .nparams = (int)(sizeof(rows) / sizeof *(rows))

typedef struct ip_task_def {
    const char *name;        /* "train", "eval", ... */
    const char *doc;
    const ip_param *params;
    int nparams;
    size_t size;             /* sizeof the task struct */
    /* fields no key sets, before the rows' defaults (NULL: zeroes) */
    void (*init)(void *task);
    size_t at_data;          /* IP_AT of a char[1024]: data source "kind:path" */
    size_t at_train_limit, at_test_limit; /* IP_AT of a size_t */
    size_t at_out;           /* IP_AT of a char[1024]: the output file ("" = none) */
    size_t at_seed[2];       /* IP_AT of a uint64_t: the task's RNG seed (runner: derived from (spec seed, key)) */
    size_t at_resume;        /* IP_AT of an ip_resume (io/resume.h): the kind checkpoints itself (0: it cannot) */
    size_t at_shard[2];      /* IP_AT of two ints: the part (shard, shards) of a task the runner split (rn_kind.shards) */
    /* Optional rule across keys, on a filled struct: 0, or -1 with msg and
     * *key = the key to blame (the spec loader reports it there; "a|b": the
     * first of them the spec sets). shape: the data's input shape when the
     * caller knows it without loading the data (the spec loader), else NULL. */
    int (*check)(const void *task, const struct ip_input_shape *shape, const char **key, char *msg, size_t cap);
    /* Runs the task: the metrics of one unit of work. */
    int (*run)(const void *task, ip_metrics *out, ip_err *e);
} ip_task_def;

/* Every task kind of the core, NULL-terminated (core/tasks/kinds.c), and each by name. */
extern const ip_task_def ip_train_def, ip_eval_def, ip_prune_def, ip_fake1_def, ip_verify_def, ip_fake2_def,
    ip_fake3_def, ip_finetune_def, ip_flip_def, ip_fingerprint_def, ip_match_def, ip_noop_def,
    ip_distill_def, ip_extract_def, ip_advtrain_def, ip_erb_def;
extern const ip_task_def *const ip_task_defs[];
const ip_task_def *ip_task_def_find(const char *name);
const ip_param *ip_task_param(const ip_task_def *d, const char *name);

/* The struct's defaults: zeroes, d->init, then every row's default. */
void ip_task_defaults(const ip_task_def *d, void *task);
/* Stores what every task gets from its surroundings into the fields the
 * struct has (ip_task_def.at_*): the data source, the limits, the output
 * file and the task's seed. A path longer than its field fails. */
int ip_task_place(const ip_task_def *d, void *task, const char *data, size_t train_limit, size_t test_limit,
                  const char *out, uint64_t seed, ip_err *e);
/* Where a kind that checkpoints keeps its state file and how often it saves
 * (no-op for a kind without at_resume). A path longer than the field fails. */
int ip_task_place_resume(const ip_task_def *d, void *task, const char *state_path, double every, ip_err *e);
/* Identity of a filled task struct: FNV-1a of its kind's name and its bytes,
 * its ip_resume field left out (where and how often it saves does not change
 * what it computes): a state file of other parameters is not resumed. */
uint64_t ip_task_ident(const ip_task_def *d, const void *task);
/* The task's ip_resume field (io/resume.h), or NULL when its kind cannot resume. */
struct ip_resume *ip_task_resume(const ip_task_def *d, void *task);
/* Stores one typed value into its field (a string longer than the field fails). */
int ip_param_store(const ip_param *p, const ip_value *v, void *task, ip_err *e);
/* Parses text by the row's rule (type, bounds, choices): 0, or -1 with msg.
 * v->text points at `text` (the caller keeps it alive); an INTLIST's items go
 * to list_buf[1 + IP_MAX_INT_LIST], which v->u.list then points at. */
int ip_value_parse(const ip_param *p, const char *text, ip_value *v, int32_t *list_buf, char *msg, size_t cap);
/* The value of a row's default (its text is p->def; INTLIST items go to list_buf). */
int ip_param_default(const ip_param *p, ip_value *v, int32_t *list_buf);
/* The index of s in an ENUM row's choices, or -1. */
int ip_param_choice(const ip_param *p, const char *s);

/* Splits a set's stored paths (IP_PATH_SET_SEP): up to cap paths into
 * out[i] (each a pointer into `list` and its length). Returns their count,
 * or -1 with msg when there are more than cap, or an empty item. */
int ip_path_set_split(const char *list, const char **out, size_t *len, int cap, char *msg, size_t msgcap);

/* The kinds where the DeepIPR paper and its authors' code part ways follow
 * one or the other (ip_protocol, core/model/model.h; docs/passports.md
 * "Protocols"): one key, `protocol`, in each of their tables (P_PROTOCOL),
 * and a spec's top-level `protocol` sets it for every entry that does not. */
#define IP_PROTOCOL_DEFAULT "paper"
#define IP_PROTOCOL_DOC                                                                                              \
    "paper: as the DeepIPR paper describes; deepipr-code: as the authors' code does (docs/passports.md "            \
    "\"Protocols\")"

/* A macro's value as a string literal, for docs that quote a constant. */
#define IP_XSTR_(x) #x
#define IP_XSTR(x) IP_XSTR_(x)

/* The `batch` of tasks that only evaluate: an upper bound for a small model,
 * whose passes take at most IP_INFER_BATCH images (core/model/train.h). */
#define P_EVAL_BATCH_DOC                                                                                            \
    "evaluation batch (a model of <= " IP_XSTR(IP_INFER_SMALL_MFLOP) " MFLOP per image evaluates at most "           \
    IP_XSTR(IP_INFER_BATCH) " images per pass, core/model/train.h)"

/* Table rows. FIELD is a member designator of the task struct S (e.g.
 * train.opt.lr); the default is one literal, both value and text. */
#define IP_FIELD_(S, FIELD) offsetof(S, FIELD), sizeof(((S *)0)->FIELD)
#define P_INT(S, name, FT, FIELD, def, lo, hi, doc) {name, IP_P_INT, FT, IP_FIELD_(S, FIELD), #def, (def), lo, hi, NULL, NULL, doc}
#define P_FLOAT(S, name, FT, FIELD, def, lo, hi, doc) {name, IP_P_FLOAT, FT, IP_FIELD_(S, FIELD), #def, (def), lo, hi, NULL, NULL, doc}
#define P_BOOL(S, name, FIELD, def, doc) {name, IP_P_BOOL, IP_F_INT, IP_FIELD_(S, FIELD), #def, (def), 0, 1, NULL, NULL, doc}
#define P_STR(S, name, FIELD, def, doc) {name, IP_P_STRING, IP_F_STR, IP_FIELD_(S, FIELD), def, 0, 0, 0, NULL, NULL, doc}
/* an ENUM into an int field: values (NULL: the index) */
#define P_ENUM(S, name, FIELD, def, choices, values, doc) \
    {name, IP_P_ENUM, IP_F_INT, IP_FIELD_(S, FIELD), def, 0, 0, 0, choices, values, doc}
/* an ENUM kept as its name (char[]) */
#define P_ENUM_STR(S, name, FIELD, def, choices, doc) \
    {name, IP_P_ENUM, IP_F_STR, IP_FIELD_(S, FIELD), def, 0, 0, 0, choices, NULL, doc}
/* a reference: the path lands in FIELD; def NULL = required, "" = optional */
#define P_REF(S, name, type, FIELD, def, doc) {name, type, IP_F_STR, IP_FIELD_(S, FIELD), def, 0, 0, 0, NULL, NULL, doc}
/* a set of models (IP_P_COPIES / IP_P_OTHERS), optional ("" = none): the joined paths land in FIELD */
#define P_SET(S, name, type, FIELD, doc) {name, type, IP_F_STR, IP_FIELD_(S, FIELD), "", 0, 0, 0, NULL, NULL, doc}
/* the `protocol` key of a kind (an ip_protocol int field) */
#define P_PROTOCOL(S, FIELD) P_ENUM(S, "protocol", FIELD, IP_PROTOCOL_DEFAULT, IP_PROTOCOL_CHOICES, NULL, IP_PROTOCOL_DOC)
/* a key that only names the task (a repetition): no field */
/* The optimiser's keys of a kind that trains (train, distill, advtrain): one
 * home for their names, defaults, bounds and docs. OPT is the struct's
 * ip_optim_cfg field. */
#define IP_WEIGHT_DECAY_PAPER 5e-4 /* the paper's (and every trainer's default but train's under deepipr-code) */
#define IP_OPTIM_ROWS(S, OPT)                                                                                      \
    IP_OPTIM_ROWS_WD(S, OPT, IP_WEIGHT_DECAY_ROW(S, OPT, IP_WEIGHT_DECAY_PAPER, 0, "L2 weight decay"))
/* The same with a kind's own weight_decay row (the train kind's default
 * depends on its protocol: core/tasks/models.c). An argument of this macro
 * is expanded before P_FLOAT stringifies it: def may be a macro. */
#define IP_WEIGHT_DECAY_ROW(S, OPT, def, lo, doc) P_FLOAT(S, "weight_decay", IP_F_FLOAT, OPT.weight_decay, def, lo, 1, doc)
#define IP_OPTIM_ROWS_WD(S, OPT, WD_ROW)                                                                          \
    P_ENUM(S, "optimizer", OPT.kind, "sgd", "sgd|adam", NULL, "optimiser"),                                         \
        P_FLOAT(S, "lr", IP_F_FLOAT, OPT.lr, 0.01, 1e-9, 10, "learning rate"),                                      \
        P_FLOAT(S, "momentum", IP_F_FLOAT, OPT.momentum, 0.9, 0, 1, "SGD momentum"),                                \
        WD_ROW,                                                                                                     \
        {"milestones", IP_P_INTLIST, IP_F_MILESTONES, IP_FIELD_(S, OPT), "", 0, 1, 100000, NULL, NULL,              \
         "epochs where lr is multiplied by 0.1, increasing, e.g. \"100,150\""}
/* A kind's init (ip_task_def.init) for the optimiser's constants no key sets
 * (betas, eps, lr decay) in the struct's ip_optim_cfg field `opt`. */
#define IP_OPTIM_INIT(name, S)                                                                                     \
    static void name(void *p) { ip_optim_defaults(&((S *)p)->opt, IP_OPT_SGD); }
#define P_NAME_INT(name, def, lo, hi, doc) {name, IP_P_INT, IP_F_NONE, 0, 0, #def, (def), lo, hi, NULL, NULL, doc}

#endif
