/* A small YAML tree on top of libyaml's event parser, for the spec loader:
 * nodes live in one array and refer to each other by index, so aliases share
 * nodes and the whole tree is freed at once. Every node keeps its 1-based
 * line/column for error messages; duplicate mapping keys are kept (the spec
 * loader reports them). */
#ifndef RN_YAML_TREE_H
#define RN_YAML_TREE_H

#include <stddef.h>

typedef enum { YT_SCALAR = 1, YT_SEQ = 2, YT_MAP = 3 } yt_type;

typedef struct yt_node {
    yt_type type;
    char *text;        /* scalar text (NUL-terminated); "" for collections */
    size_t len;
    int plain;         /* plain (unquoted, untagged) scalar: may be a number, a bool or null */
    int line, col;     /* 1-based start mark (0 for nodes made without one) */
    int origin;        /* 0 = the spec file, k > 0 = command-line override k-1 */
    int *kids;         /* SEQ: items; MAP: key, value, key, value, ... (node ids) */
    int nkids, capkids;
    int mark;          /* scratch flag for walks */
    int *first;        /* MAP: first[p] = the first pair with pair p's key (built by yt_map_first) */
    int nfirst;        /* pairs first[] was built for (a map that grew rebuilds it) */
} yt_node;

typedef struct yt_doc {
    yt_node *v;
    int n, cap;
} yt_doc;

typedef struct yt_error {
    char msg[400];
    int line, col;     /* 1-based, 0 when unknown */
} yt_error;

/* Maximum nesting of collections accepted by yt_parse. */
#define YT_MAX_DEPTH 64

/* Parses one YAML document from text into d (nodes are appended to whatever
 * d already holds). *root = the document's root node, or -1 for an empty
 * document. Returns 0, or -1 with err filled (syntax error, several
 * documents, unknown alias, nesting too deep, out of memory). */
int yt_parse(yt_doc *d, const char *text, size_t len, int origin, int *root, yt_error *err);

/* New nodes (-1 when out of memory). */
int yt_new_scalar(yt_doc *d, const char *text, int plain, int origin, int line, int col);
int yt_new_map(yt_doc *d, int origin, int line, int col);
/* Appends node kid to collection parent; -1 when out of memory. */
int yt_append(yt_doc *d, int parent, int kid);

/* The value of the first pair whose key is the scalar `key`, or -1. */
int yt_map_get(const yt_doc *d, int map, const char *key);
/* The index (in kids) of the key of the first such pair, or -1. */
int yt_map_find(const yt_doc *d, int map, const char *key);
/* Whether pair p (kids[2p]) repeats the key of an earlier pair of the map. */
int yt_map_is_dup(yt_doc *d, int map, int p);
/* The first pair of the map whose key equals pair p's (p itself when none
 * earlier; non-scalar keys are never equal). Amortised O(1): a hash of the
 * map's keys is built once per map, so a mapping with many keys is not
 * checked pairwise. */
int yt_map_first(yt_doc *d, int map, int p);

/* Checks that text is UTF-8 YAML can read before it is parsed: not UTF-16 or
 * UTF-32, no NUL byte, no invalid, overlong or surrogate UTF-8 sequence.
 * Returns 0, or -1 with err naming the line and column (1-based, in
 * characters) of the first bad byte. */
int yt_check_text(const char *text, size_t len, yt_error *err);
/* The 1-based line and column (in characters) of byte offset off of text. */
void yt_offset_pos(const char *text, size_t len, size_t off, int *line, int *col);

/* A plain scalar that YAML reads as null: "", "~", "null", "Null", "NULL". */
int yt_is_null(const yt_doc *d, int node);
/* "a scalar", "a list", "a mapping" */
const char *yt_type_name(const yt_doc *d, int node);

void yt_free(yt_doc *d);

#endif
