/* The run journal: an append-only, fsync'ed text file beside the results
 * file ("<output>.journal") that records every task start and every
 * finished task, so that `--resume` after a crash (kill -9 of any process,
 * power loss) reruns only what was in flight. docs/results.md describes the
 * line format and the resume rules.
 *
 * Only the coordinator (rank 0) writes the journal. Every line is written
 * with one write(2) and carries a CRC32: a line torn by a crash is detected
 * and ignored when it is the last one (and cut off before appending again),
 * a damaged line anywhere else is an error. */
#ifndef RN_JOURNAL_H
#define RN_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/util/err.h"
#include "../../core/util/metrics.h"
#include "../spec/spec.h"
#include "../kinds/task.h"

/* The newest journal format this ipsweep reads (it reads 1 too). Version 2
 * adds the "C" line (many starts of one task folded into one count) that
 * only compaction writes: a journal that went through compaction says 2, so
 * an older ipsweep refuses it by its version instead of at that line. */
#define RN_JOURNAL_VERSION 2
/* A task started this many times without ever finishing is failed with
 * RN_CRASH_ERROR on resume instead of being retried again. */
#define RN_CRASH_LIMIT 2
#define RN_CRASH_ERROR "crashed its worker twice"

/* One finished task. */
typedef struct rn_record {
    char key[RN_KEY_LEN];
    rn_status status;            /* RN_DONE, RN_FAILED or RN_SKIPPED */
    int rank;                    /* rank that ran it, -1 when it never ran (skipped) */
    double wall_seconds;         /* NaN when unknown */
    int attempts;                /* starts of this task, this one included */
    char error[512];             /* "" when done */
    ip_metrics metrics;          /* scalars + arrays (arrays owned by the record) */
} rn_record;

/* Zeroes r (empty metrics, rank -1, wall NaN). */
void rn_record_init(rn_record *r);
/* Frees the metrics' arrays and re-initialises r. */
void rn_record_free(rn_record *r);
/* Deep copy (dst must not hold arrays: it is overwritten). */
int rn_record_copy(rn_record *dst, const rn_record *src, ip_err *e);

/* Spec hashes (FNV-1a 64): the journal header stores one so that a resume
 * with another spec is refused. rn_journal_hash_bytes chains: start with
 * RN_HASH_INIT. rn_journal_spec_hash covers the spec text, name, seed and
 * every expanded task (key, kind, name, all parameters, dependencies), and
 * the effective settings (seed, data.source, data.train_limit,
 * data.test_limit), so `--set` overrides that change tasks or data change
 * the hash too. */
#define RN_HASH_INIT 0xcbf29ce484222325ULL
/* Returned (instead of -1) when the journal's content is bad or belongs to
 * another spec or other settings: bad input (exit 2), not an I/O failure.
 * The message names the journal and the line. */
#define RN_JOURNAL_BAD (-2)
uint64_t rn_journal_hash_bytes(uint64_t h, const void *data, size_t n);
uint64_t rn_journal_spec_hash(const rn_spec *spec);

/* "<output>.journal" into out; -1 when it does not fit. */
int rn_journal_path(char *out, size_t cap, const char *output);

typedef struct rn_start_count {
    uint64_t h;                  /* FNV-1a of the key; 0 = empty slot */
    int starts;
} rn_start_count;

typedef struct rn_journal {
    int fd;                      /* -1 when closed */
    char path[1100];             /* the journal file, "<output>.journal" */
    uint64_t spec_hash;
    long long size;              /* bytes of complete lines: a failed write is cut back to this */
    char *buf;                   /* line buffer, reused */
    size_t cap;
    rn_start_count *starts;      /* starts per key (this run and earlier ones), open addressing */
    size_t nstarts, capstarts;
    int locked;                  /* flock held */
    double sync_interval;        /* seconds; 0 = fdatasync on every finish (default) */
    double last_sync;            /* CLOCK_MONOTONIC seconds of the last fdatasync */
    int dirty;                   /* lines written since the last fdatasync */
} rn_journal;

/* Opens "<output>.journal" (output = the results file path).
 * fresh=1: creates or truncates it and writes the header line (the caller
 *          has made sure that --force was given when it existed).
 * fresh=0: resume. The header must name spec_hash (otherwise a clear error:
 *          the journal belongs to another spec); a torn trailing line left by
 *          a crash is cut off; new lines are appended. A missing or empty
 *          journal is created.
 * The file is locked (flock, where the filesystem supports it): a second
 * ipsweep on the same output fails here. */
int rn_journal_open(rn_journal *j, const char *output, uint64_t spec_hash, int fresh, ip_err *e);

/* A task was handed to `rank`. Written with write(2) but not fsync'ed (the
 * next finish's fdatasync covers it): a process crash cannot lose it. The
 * attempt number recorded is this journal's count of starts of the key,
 * earlier runs included. rn_journal_start records a task that ran alone on
 * its rank; rn_journal_start_shared(..., 0) one handed out in a batch with
 * others (line "S key rank attempt shared"): if that rank dies, any of the
 * batch may have killed it, so such starts do not count toward the
 * crash-twice rule (the resume runs the batch's unfinished tasks alone). */
int rn_journal_start(rn_journal *j, const char *key, int rank, ip_err *e);
int rn_journal_start_shared(rn_journal *j, const char *key, int rank, int alone, ip_err *e);

/* A task stopped on request and saved its state (RN_INTERRUPTED): an "I"
 * line, written and fdatasync'ed. Its starts so far no longer count toward
 * the crash-twice rule, and a resume does not treat it as a suspect. */
int rn_journal_interrupted(rn_journal *j, const char *key, int rank, ip_err *e);

/* Starts recorded for key so far (earlier runs included). */
int rn_journal_attempts(const rn_journal *j, const char *key);

/* A task finished: one line, written and fdatasync'ed before returning.
 * r->attempts <= 0 records the journal's own count of starts instead. */
int rn_journal_finish(rn_journal *j, const rn_record *r, ip_err *e);
/* n finished tasks in one write(2) and one fdatasync (the coordinator batches
 * what arrives within a few ms). On error nothing of the batch is kept. */
int rn_journal_finish_many(rn_journal *j, const rn_record *const *recs, int n, ip_err *e);

/* Group commit: with seconds > 0, finish lines are still written at once
 * (so kill -9 of any process loses nothing that finish returned for) but
 * fdatasync'ed at most every `seconds`; call rn_journal_sync from a periodic
 * tick. Only an OS crash or power loss can then lose up to `seconds` of
 * finished tasks (they are rerun on resume). Default 0: every finish call
 * is fdatasync'ed before it returns. */
void rn_journal_set_sync_interval(rn_journal *j, double seconds);
/* fdatasync when anything was written since the last one. */
int rn_journal_sync(rn_journal *j, ip_err *e);
/* fdatasync, unlock, close, free. Safe on a closed or zeroed journal. */
void rn_journal_close(rn_journal *j);

/* A key that was started but has no finish record. */
typedef struct rn_unfinished {
    char key[RN_KEY_LEN];
    int starts;                  /* all starts */
    int alone;                   /* starts while alone on its rank: what the crash-twice rule counts */
    int last_rank;
} rn_unfinished;

typedef struct rn_journal_state {
    rn_record *recs;             /* finished tasks, one per key (the last record wins), in journal order */
    int nrecs;
    rn_unfinished *unfinished;   /* started, never finished, in order of first start */
    int nunfinished;
    int torn;                    /* 1 when a torn/corrupt trailing line was ignored */
    long long valid_bytes;       /* length of the valid part of the file */
    int *index;                  /* private: open-addressing key -> entry table */
    size_t index_cap;
    void *entries;               /* private */
    int nentries, capentries;
} rn_journal_state;

/* Reads "<output>.journal": the finished records (last one wins per key),
 * and the keys started without a finish with their start counts. A torn or
 * corrupt LAST line (kill -9 mid-write) is ignored (st->torn = 1); a corrupt
 * line followed by valid ones is an error naming its line number; a header
 * with another spec hash is an error. A missing journal is an error. */
int rn_journal_read(const char *output, uint64_t spec_hash, rn_journal_state *st, ip_err *e);
void rn_journal_state_free(rn_journal_state *st);
/* The finished record of key, or NULL. O(1). */
const rn_record *rn_journal_state_find(const rn_journal_state *st, const char *key);
/* Starts recorded for key (0 when never started). O(1). */
int rn_journal_state_starts(const rn_journal_state *st, const char *key);

/* 1 when key was started and its last start was not followed by an
 * interruption: unless a finish record says otherwise, it may have been
 * running when a process died (a resume hands such tasks out alone). */
int rn_journal_state_lost(const rn_journal_state *st, const char *key);

/* Resume rule: every unfinished key with >= RN_CRASH_LIMIT starts alone gets a
 * FAILED record (error RN_CRASH_ERROR, attempts = its starts) appended to the
 * journal (one batch) and to st (it moves from unfinished to recs). Returns
 * the number of tasks failed, or -1. May move st->recs: call it before
 * keeping pointers from rn_journal_state_find. */
int rn_journal_fail_crashed(rn_journal *j, rn_journal_state *st, ip_err *e);

/* Compaction (at resume, after rn_journal_read has accepted the journal):
 * rewrites the open journal as its header, its settings line and, per task,
 * its last finish line and its starts (as they were, or folded into one "C"
 * line when there are more than a few), dropping overridden finish lines and
 * a torn tail. A resume computes the same from it as from the original
 * (records, attempts, start counts, crash-twice decisions, the settings
 * explanation), and its size is bounded by the number of tasks whatever the
 * number of resumes. Written to "<journal>.compact", fsync'ed, renamed over
 * the journal, directory fsync'ed: a crash leaves the old or the new journal,
 * both valid. With min_saving > 0 the journal is left alone unless that
 * fraction of its bytes would go (RN_COMPACT_MIN_SAVING: after a resume the
 * journal is at most 4/3 of its compact size). Returns 1 when rewritten, 0
 * when left alone, RN_JOURNAL_BAD for bad content, -1 on I/O failure; on
 * failure j stays open and usable (appending to whichever file is the
 * journal). info (optional) gets sizes and the time taken. */
#define RN_COMPACT_MIN_SAVING 0.25
typedef struct rn_compaction {
    long long bytes_before, bytes_after;  /* after == before when left alone */
    long lines_before, lines_after;
    double seconds;
    int rewritten;
} rn_compaction;
int rn_journal_compact(rn_journal *j, double min_saving, rn_compaction *info, ip_err *e);

/* Records the settings the hash covers in a "D" line (after the header of a
 * fresh journal), so that a refused resume can say what changed. */
int rn_journal_note_settings(rn_journal *j, const rn_spec *spec, ip_err *e);
/* When output's journal records settings that differ from spec's, writes
 * "data.train_limit is 2000 but the run was started with 2500" into msg and
 * returns 1; 0 otherwise (no journal, no "D" line, same settings). */
int rn_journal_explain_change(const char *output, const rn_spec *spec, char *msg, size_t cap);

#endif
