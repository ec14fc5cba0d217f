/* Private to runner/run/journal*.c: what the writer (journal.c), the reader
 * (journal_read.c), the run's identity (journal_ident.c) and compaction
 * (journal_compact.c) share. The line format lives in journal_line.c; the
 * public API is journal.h. */
#ifndef RN_JOURNAL_IMPL_H
#define RN_JOURNAL_IMPL_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/util/strbuf.h"
#include "journal.h"

#define JN_MAGIC "ipsweep-journal"
/* The version of journals that never went through compaction: written by
 * rn_journal_open so that older ipsweep binaries can still resume them. */
#define JN_VERSION_PLAIN 1

/* ---- numbers in the C locale, whatever LC_NUMERIC the process runs with
 * (a journal may be resumed elsewhere) */
typedef struct numloc {
    locale_t old;
    int set;
} numloc;
void jn_numloc_enter(numloc *n);
void jn_numloc_leave(const numloc *n);

/* ---- building lines: a growable buffer that remembers running out of memory */
typedef ip_strbuf sbuf; /* core/util/strbuf.h */
void jn_sb_esc(sbuf *b, const char *s);     /* a text field, escaped */
void jn_sb_int(sbuf *b, long long v);
void jn_sb_end_line(sbuf *b, size_t start); /* "\t<crc>\n" for the payload from `start` */
int jn_valid_status(rn_status s);
/* The "F" line of r, with `attempts` in its attempts field. */
void jn_put_finish(sbuf *b, const rn_record *r, int attempts);
/* The "H" line. */
void jn_put_header(sbuf *b, int version, uint64_t spec_hash);

/* ---- parsing lines */
/* "<payload>\t<8 hex>" (no '\n') with a matching CRC: the payload length, or -1. */
long jn_line_payload(const char *s, size_t n);
/* Splits a NUL-terminated payload at TABs in place. */
typedef struct fields {
    char *cur;
    int ok;
} fields;
char *jn_next_field(fields *f);
int jn_text_field(fields *f, char *out, size_t cap);
int jn_int_field(fields *f, long long lo, long long hi, long long *out);
/* The fields after "F" into r (initialised here; freed on failure). */
int jn_parse_finish(fields *f, rn_record *r);

/* One line after the header, parsed (jn_parse_line). */
typedef struct jn_line {
    char type;                   /* 'S', 'C', 'I', 'F' or 'D' */
    char key[RN_KEY_LEN];        /* S, C, I (F: rec->key) */
    int rank;                    /* S: the rank it went to; C: the last start's; I: the interrupted run's */
    int starts, alone;           /* S: 1, and 1 unless shared; C: its counts; I: 0 */
} jn_line;
/* Parses and checks a payload (NUL-terminated, modified in place); an F
 * line goes into *rec (the caller owns its arrays afterwards). Bad content:
 * RN_JOURNAL_BAD with "<path>: line N: ..." in e. */
int jn_parse_line(char *payload, jn_line *l, rn_record *rec, const char *path, long lineno, ip_err *e);

/* Per valid line after the header: the payload (NUL-terminated, modifiable,
 * `len` bytes, inside the buffer being walked). */
typedef int (*line_fn)(void *ctx, char *payload, size_t len, long lineno, ip_err *e);
/* Walks the lines of buf: the header must match spec_hash (*version gets
 * its version when not NULL); fn gets every other valid line. A bad line
 * followed only by bad/torn bytes is a torn tail (*valid_end stops before
 * it, *torn = 1); followed by a valid line it is an error. */
int jn_scan(char *buf, size_t len, const char *path, uint64_t spec_hash, line_fn fn, void *ctx, size_t *valid_end,
            int *torn, int *version, ip_err *e);

/* ---- records, files */
void jn_record_release(rn_record *r); /* frees the arrays only */
int jn_slurp(int fd, char **out, size_t *len);
int jn_write_all(int fd, const char *p, size_t n);
int jn_fsync_dir_of(const char *path);
/* FNV-1a of a key, never 0 (0 marks an empty slot). */
uint64_t jn_key_hash(const char *key);
/* Appends complete lines to the open journal (journal.c). */
int jn_append_lines(rn_journal *j, const char *p, size_t n, int sync, ip_err *e);

#endif
