/* The scheduler (sched.h): a priority queue of ready tasks, the serial loop,
 * and the MPI coordinator/worker protocol.
 *
 * Protocol (tags): a worker sends TAG_REQ with the packed results of its
 * previous batch (none at first) and waits; the coordinator answers TAG_WORK
 * with a batch of task ids when it has ready tasks (the request stays pending
 * meanwhile), or with a batch of length STOP_DONE when everything is
 * finished, STOP_INTERRUPTED when the run stopped on request. TAG_STOP (an
 * int, no reply) asks a busy worker to interrupt its running task.
 * TAG_PROGRESS (rn_pack_progress, no reply) is a worker's note on its
 * running task. */
#include "sched.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_setup.h"
#include "wire.h"
#include "../../core/util/proc.h"
#include "../../core/util/progress.h"
#include "../../core/util/stop.h"

enum { TAG_REQ = 11, TAG_WORK = 12, TAG_STOP = 13, TAG_PROGRESS = 14 };
enum { STOP_DONE = -1, STOP_INTERRUPTED = -2 };

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---------------- running one task ---------------- */

/* The task this process runs now (-1: none) and when it began: what its progress notes are about. */
static struct {
    int task;
    double t0;
} now_running = {-1, 0};

static int note_of(double fraction, rn_task_progress *p) {
    if (now_running.task < 0) return 0;
    *p = (rn_task_progress){now_running.task, fraction, ip_now_s() - now_running.t0};
    return 1;
}

void rn_run_task(const rn_task *t, const rn_ctx *ctx, rn_result *r) {
    memset(r, 0, sizeof *r);
    r->task = t->id;
    r->rank = ctx->rank;
    ip_metrics_init(&r->metrics);
    ip_err e = {{0}};
    if (ip_stop_requested()) {
        r->status = RN_INTERRUPTED;
        snprintf(r->error, sizeof r->error, "not started: the run is stopping");
        return;
    }
    double t0 = ip_now_s();
    now_running.task = t->id, now_running.t0 = t0;
    ip_progress_reset();
    int rc = rn_task_run(t, ctx, &r->metrics, &e);
    now_running.task = -1;
    r->wall_seconds = ip_now_s() - t0;
    if (rc == 0) {
        for (int i = 0; i < r->metrics.nscalars && rc == 0; i++)
            if (isnan(r->metrics.values[i]) && strcmp(r->metrics.names[i], "test_acc") == 0)
                rc = ip_fail(&e, "metric test_acc is NaN");
    }
    r->status = rc == 0 ? RN_DONE : ip_err_is_interrupted(&e) ? RN_INTERRUPTED : RN_FAILED;
    if (rc != 0) {
        snprintf(r->error, sizeof r->error, "%s", e.msg[0] ? e.msg : "failed without a message");
        ip_metrics_free(&r->metrics);
    }
}

/* ---------------- the task graph ---------------- */

typedef struct graph {
    int n;
    int *ndeps_left;       /* unfinished dependencies per task */
    int *child_off, *children; /* CSR: dependents of each task */
    double *priority;      /* critical path: cost + max priority of dependents */
    int *heap, nheap;      /* ready tasks, max-priority first (ties: lower id) */
} graph;

static void graph_free(graph *g) {
    free(g->ndeps_left), free(g->child_off), free(g->children), free(g->priority), free(g->heap);
    memset(g, 0, sizeof *g);
}

static int heap_less(const graph *g, int a, int b) { /* a before b */
    if (g->priority[a] != g->priority[b]) return g->priority[a] > g->priority[b];
    return a < b;
}

static void heap_push(graph *g, int t) {
    int i = g->nheap++;
    g->heap[i] = t;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_less(g, g->heap[i], g->heap[p])) break;
        int tmp = g->heap[i];
        g->heap[i] = g->heap[p], g->heap[p] = tmp;
        i = p;
    }
}

static int heap_pop(graph *g) {
    int top = g->heap[0];
    g->heap[0] = g->heap[--g->nheap];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < g->nheap && heap_less(g, g->heap[l], g->heap[m])) m = l;
        if (r < g->nheap && heap_less(g, g->heap[r], g->heap[m])) m = r;
        if (m == i) break;
        int tmp = g->heap[i];
        g->heap[i] = g->heap[m], g->heap[m] = tmp;
        i = m;
    }
    return top;
}

static int graph_build(graph *g, const rn_spec *s, const rn_status *status, ip_err *e) {
    int n = s->ntasks;
    memset(g, 0, sizeof *g);
    g->n = n;
    g->ndeps_left = calloc((size_t)n + 1, sizeof(int));
    g->child_off = calloc((size_t)n + 2, sizeof(int));
    g->priority = calloc((size_t)n + 1, sizeof(double));
    g->heap = calloc((size_t)n + 1, sizeof(int));
    size_t nedges = 0;
    for (int i = 0; i < n; i++) nedges += (size_t)s->tasks[i].ndeps;
    g->children = calloc(nedges + 1, sizeof(int));
    if (!g->ndeps_left || !g->child_off || !g->priority || !g->heap || !g->children) {
        graph_free(g);
        return ip_fail(e, "out of memory for the task graph (%d tasks)", n);
    }
    for (int i = 0; i < n; i++)
        for (int d = 0; d < s->tasks[i].ndeps; d++) g->child_off[s->tasks[i].deps[d] + 1]++;
    for (int i = 0; i < n; i++) g->child_off[i + 1] += g->child_off[i];
    int *fill = calloc((size_t)n + 1, sizeof(int));
    if (!fill) {
        graph_free(g);
        return ip_fail(e, "out of memory");
    }
    for (int i = 0; i < n; i++)
        for (int d = 0; d < s->tasks[i].ndeps; d++) {
            int p = s->tasks[i].deps[d];
            g->children[g->child_off[p] + fill[p]++] = i;
        }
    free(fill);
    /* dependencies always have smaller ids (spec expansion order), so one
     * backward sweep computes the critical paths */
    for (int i = n - 1; i >= 0; i--) {
        double best = 0;
        for (int c = g->child_off[i]; c < g->child_off[i + 1]; c++)
            if (g->priority[g->children[c]] > best) best = g->priority[g->children[c]];
        g->priority[i] = s->tasks[i].cost + best;
    }
    for (int i = 0; i < n; i++)
        for (int d = 0; d < s->tasks[i].ndeps; d++)
            if (status[s->tasks[i].deps[d]] != RN_DONE) g->ndeps_left[i]++;
    return 0;
}

/* ---------------- coordinator state ---------------- */

typedef struct coord {
    const rn_spec *spec;
    rn_status *status;
    const rn_sched_hooks *h;
    graph g;
    int outstanding;       /* tasks pending or running */
    int stopping;          /* a stop was requested: hand out nothing more */
} coord;

/* Marks every pending descendant of a failed/skipped task skipped and reports them. */
static int skip_descendants(coord *c, int failed, ip_err *e) {
    int *stack = malloc(((size_t)c->g.n + 1) * sizeof(int)), top = 0;
    if (!stack) return ip_fail(e, "out of memory");
    stack[top++] = failed;
    while (top > 0) {
        int t = stack[--top];
        for (int k = c->g.child_off[t]; k < c->g.child_off[t + 1]; k++) {
            int ch = c->g.children[k];
            if (c->status[ch] != RN_PENDING) continue;
            c->status[ch] = RN_SKIPPED;
            c->outstanding--;
            rn_result r = {.task = ch, .status = RN_SKIPPED, .rank = -1};
            ip_metrics_init(&r.metrics);
            snprintf(r.error, sizeof r.error, "skipped: dependency %s did not finish",
                     c->spec->tasks[t].key);
            const rn_result *rp = &r;
            if (c->h->finished && c->h->finished(c->h->user, &rp, 1, e) != 0) {
                free(stack);
                return -1;
            }
            stack[top++] = ch;
        }
    }
    free(stack);
    return 0;
}

/* Records finished results and releases their dependents; an interrupted
 * task goes back to pending (through the interrupted hook) and stops the run. */
static int coord_finish(coord *c, rn_result **rs, int n, ip_err *e) {
    if (n == 0) return 0;
    int w = 0; /* finished ones first, in place; interrupted ones are not results */
    for (int i = 0; i < n; i++) {
        if (rs[i]->status != RN_INTERRUPTED) {
            rn_result *tmp = rs[w];
            rs[w++] = rs[i];
            rs[i] = tmp;
            continue;
        }
        c->status[rs[i]->task] = RN_PENDING;
        c->stopping = 1;
        if (c->h->interrupted && c->h->interrupted(c->h->user, rs[i], e) != 0) return -1;
    }
    n = w;
    if (n == 0) return 0;
    if (c->h->finished && c->h->finished(c->h->user, (const rn_result *const *)rs, n, e) != 0) return -1;
    for (int i = 0; i < n; i++) {
        int t = rs[i]->task;
        c->status[t] = rs[i]->status;
        c->outstanding--;
        if (rs[i]->status == RN_DONE) {
            for (int k = c->g.child_off[t]; k < c->g.child_off[t + 1]; k++) {
                int ch = c->g.children[k];
                if (--c->g.ndeps_left[ch] == 0 && c->status[ch] == RN_PENDING) heap_push(&c->g, ch);
            }
        } else if (skip_descendants(c, t, e) != 0) {
            return -1;
        }
    }
    return 0;
}

static int coord_init(coord *c, const rn_spec *spec, rn_status *status, const rn_sched_hooks *h, ip_err *e) {
    memset(c, 0, sizeof *c);
    c->spec = spec, c->status = status, c->h = h;
    if (graph_build(&c->g, spec, status, e) != 0) return -1;
    for (int i = 0; i < spec->ntasks; i++) {
        if (status[i] == RN_RUNNING) status[i] = RN_PENDING;
        if (status[i] != RN_PENDING) continue;
        c->outstanding++;
    }
    /* tasks whose dependency already ended badly (resumed run) are skipped now */
    for (int i = 0; i < spec->ntasks; i++)
        if (status[i] == RN_FAILED || status[i] == RN_SKIPPED)
            if (skip_descendants(c, i, e) != 0) return -1;
    for (int i = 0; i < spec->ntasks; i++)
        if (status[i] == RN_PENDING && c->g.ndeps_left[i] == 0) heap_push(&c->g, i);
    return 0;
}

/* ---------------- serial ---------------- */

/* Alone, a task's note goes straight to the progress hook. */
static void serial_note(void *user, double fraction) {
    const rn_sched_hooks *h = user;
    rn_task_progress p;
    if (note_of(fraction, &p)) h->progress(h->user, &p);
}

static int run_serial(const rn_spec *spec, const rn_ctx *ctx, rn_status *status, const rn_sched_hooks *h,
                      ip_err *e) {
    coord c;
    if (coord_init(&c, spec, status, h, e) != 0) return -1;
    int rc = 0;
    double last_tick = 0;
    if (h->progress) ip_progress_set_hook(serial_note, (void *)h, RN_NOTE_LOCAL);
    while (c.g.nheap > 0 && !c.stopping) {
        if (ip_stop_requested()) {
            c.stopping = 1;
            break;
        }
        int t = heap_pop(&c.g);
        status[t] = RN_RUNNING;
        if (h->started && (rc = h->started(h->user, &spec->tasks[t], 0, 1, e)) != 0) break;
        rn_result r;
        rn_run_task(&spec->tasks[t], ctx, &r);
        rn_result *rp = &r;
        rc = coord_finish(&c, &rp, 1, e);
        ip_metrics_free(&r.metrics);
        if (rc != 0) break;
        if (h->tick && ip_now_s() - last_tick > 0.5) {
            last_tick = ip_now_s();
            if ((rc = h->tick(h->user, e)) != 0) break;
        }
    }
    ip_progress_set_hook(NULL, NULL, 0);
    graph_free(&c.g);
    return rc != 0 ? rc : c.stopping;
}

/* ---------------- MPI ---------------- */

/* What the coordinator sends a worker: one buffer per worker, sent without
 * blocking. A batch of packed tasks is larger than MPI's eager limit, and a
 * blocking send would wait for the worker to post its receive; the buffer is
 * reused only once the worker asked again, i.e. after it received. */
typedef struct outbox {
    rn_buf buf;
    MPI_Request req;
} outbox;

/* A batch goes out packed: its length (-1 = stop), then each task with its
 * typed values (wire.h): workers need no task table. */
static int send_batch(const rn_spec *spec, outbox *o, int worker, const int *ids, int n, ip_err *e) {
    int32_t len = n; /* n < 0: STOP_DONE or STOP_INTERRUPTED */
    rn_buf *b = &o->buf;
    if (o->req != MPI_REQUEST_NULL) MPI_Wait(&o->req, MPI_STATUS_IGNORE);
    b->len = b->pos = 0;
    if (rn_buf_put(b, &len, sizeof len) != 0) return ip_fail(e, "out of memory");
    for (int i = 0; i < n; i++)
        if (rn_pack_task(b, &spec->tasks[ids[i]]) != 0) return ip_fail(e, "out of memory packing a batch");
    if (b->len > (size_t)INT32_MAX) return ip_fail(e, "a batch of %d tasks is too large to send", n);
    if (MPI_Isend(b->p, (int)b->len, MPI_BYTE, worker, TAG_WORK, MPI_COMM_WORLD, &o->req) != MPI_SUCCESS)
        return ip_fail(e, "MPI_Isend to rank %d failed", worker);
    return 0;
}

/* Receives every worker's progress note that arrived, passing on those of
 * tasks still running (a note may arrive after its task's result: ignored). */
static void take_notes(coord *c) {
    unsigned char m[RN_PROGRESS_MSG_BYTES];
    for (;;) {
        int flag = 0, count = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_PROGRESS, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (count != (int)sizeof m) { /* not ours: receive it whole, use nothing */
            unsigned char *tmp = malloc(count > 0 ? (size_t)count : 1);
            if (!tmp) return;
            MPI_Recv(tmp, count, MPI_BYTE, st.MPI_SOURCE, TAG_PROGRESS, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            free(tmp);
            continue;
        }
        MPI_Recv(m, count, MPI_BYTE, st.MPI_SOURCE, TAG_PROGRESS, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        rn_task_progress p;
        if (c->h->progress && rn_unpack_progress(m, sizeof m, &p) == 0 && p.task < c->spec->ntasks &&
            c->status[p.task] == RN_RUNNING)
            c->h->progress(c->h->user, &p);
    }
}

static int run_coordinator(const rn_spec *spec, rn_status *status, const rn_sched_hooks *h,
                           const rn_sched_opts *o, int nranks, ip_err *e) {
    coord c;
    if (coord_init(&c, spec, status, h, e) != 0) return -1;
    int nworkers = nranks - 1, rc = 0;
    int *idle = calloc((size_t)nranks, sizeof(int)), nidle = 0;
    rn_result *results = NULL;
    rn_result **rptr = NULL;
    int rcap = 0;
    rn_buf buf = {0};
    outbox *out = calloc((size_t)nranks, sizeof *out);
    for (int i = 0; out && i < nranks; i++) out[i].req = MPI_REQUEST_NULL;
    long backoff = 20;
    double last_tick = ip_now_s(), last_notes = last_tick;
    /* busy[w]: w has a batch; stop_sent[w]: it was asked to interrupt it */
    unsigned char *busy = calloc((size_t)nranks, 1), *stop_sent = calloc((size_t)nranks, 1);
    MPI_Request *stop_req = malloc((size_t)nranks * sizeof *stop_req);
    for (int i = 0; stop_req && i < nranks; i++) stop_req[i] = MPI_REQUEST_NULL;
    static const int32_t stop_word = 1;
    if (!idle || !out || !busy || !stop_sent || !stop_req) rc = ip_fail(e, "out of memory");
    int ids[256];
    while (rc == 0 && (c.stopping ? nidle < nworkers : (c.outstanding > 0 || nidle < nworkers))) {
        if (!c.stopping && ip_stop_requested()) c.stopping = 1;
        if (c.stopping) /* every busy worker interrupts its task (once) */
            for (int w = 1; w < nranks; w++)
                if (busy[w] && !stop_sent[w]) {
                    stop_sent[w] = 1;
                    MPI_Isend(&stop_word, 1, MPI_INT32_T, w, TAG_STOP, MPI_COMM_WORLD, &stop_req[w]);
                }
        /* hand out work to idle workers */
        while (nidle > 0 && c.g.nheap > 0 && !c.stopping) {
            int w = idle[--nidle], n = 0;
            double cost = 0;
            while (c.g.nheap > 0 && n < o->max_batch && (n == 0 || cost < o->batch_seconds)) {
                int t = heap_pop(&c.g);
                int single = h->alone && h->alone(h->user, &spec->tasks[t]);
                if (single && n > 0) { /* it goes out alone, in the next batch */
                    heap_push(&c.g, t);
                    break;
                }
                ids[n++] = t;
                cost += spec->tasks[t].cost;
                status[t] = RN_RUNNING;
                if (single) break;
            }
            for (int k = 0; k < n && rc == 0; k++)
                if (h->started) rc = h->started(h->user, &spec->tasks[ids[k]], w, n == 1, e);
            if (rc == 0) rc = send_batch(spec, &out[w], w, ids, n, e);
            busy[w] = 1;
        }
        if (rc != 0) break;
        if (nidle == nworkers && (c.stopping || c.outstanding == 0)) break;
        if (c.outstanding > 0 && c.g.nheap == 0 && nidle == nworkers) {
            rc = ip_fail(e, "scheduler stalled: %d tasks left but none can run", c.outstanding);
            break;
        }
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQ, MPI_COMM_WORLD, &flag, &st);
        if (!flag) {
            if (ip_now_s() - last_notes >= RN_NOTE_TAKE) { /* notes are rare: no probe on every pass */
                last_notes = ip_now_s();
                take_notes(&c);
            }
            if (h->tick && ip_now_s() - last_tick > 0.5) {
                last_tick = ip_now_s();
                if ((rc = h->tick(h->user, e)) != 0) break;
            }
            sleep_us(backoff);
            if (backoff < 2000) backoff *= 2;
            continue;
        }
        backoff = 20;
        int count;
        MPI_Get_count(&st, MPI_BYTE, &count);
        buf.len = buf.pos = 0;
        if ((size_t)count + 1 > buf.cap) {
            unsigned char *p = realloc(buf.p, (size_t)count + 1);
            if (!p) {
                rc = ip_fail(e, "out of memory receiving %d bytes", count);
                break;
            }
            buf.p = p, buf.cap = (size_t)count + 1;
        }
        MPI_Recv(buf.p, count, MPI_BYTE, st.MPI_SOURCE, TAG_REQ, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        buf.len = (size_t)count;
        int32_t nres = 0;
        if (rn_buf_get(&buf, &nres, sizeof nres) != 0 || nres < 0) {
            rc = ip_fail(e, "malformed message from rank %d", st.MPI_SOURCE);
            break;
        }
        if (nres > rcap) {
            rcap = nres;
            results = realloc(results, (size_t)rcap * sizeof *results);
            rptr = realloc(rptr, (size_t)rcap * sizeof *rptr);
            if (!results || !rptr) {
                rc = ip_fail(e, "out of memory");
                break;
            }
        }
        int got = 0;
        for (; got < nres; got++) {
            if (rn_unpack_result(&buf, &results[got]) != 0) {
                rc = ip_fail(e, "malformed result from rank %d", st.MPI_SOURCE);
                break;
            }
            rptr[got] = &results[got];
        }
        if (rc == 0) rc = coord_finish(&c, rptr, got, e);
        for (int i = 0; i < got; i++) ip_metrics_free(&results[i].metrics);
        idle[nidle++] = st.MPI_SOURCE;
        busy[st.MPI_SOURCE] = 0;
    }
    /* stop every worker (each is idle and waiting for a reply); on error too, so none hangs */
    if (rc != 0) {
        /* drain requests so every worker can be told to stop */
        double t0 = ip_now_s();
        while (nidle < nworkers && ip_now_s() - t0 < 30) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQ, MPI_COMM_WORLD, &flag, &st);
            if (!flag) {
                sleep_us(1000);
                continue;
            }
            int count;
            MPI_Get_count(&st, MPI_BYTE, &count);
            unsigned char *tmp = malloc((size_t)count + 1);
            MPI_Recv(tmp, count, MPI_BYTE, st.MPI_SOURCE, TAG_REQ, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            free(tmp);
            idle[nidle++] = st.MPI_SOURCE;
        }
    }
    take_notes(&c); /* the last ones, sent before each worker's last request: none is left unreceived */
    int stop_code = c.stopping ? STOP_INTERRUPTED : STOP_DONE;
    for (int i = 0; i < nidle && out; i++) send_batch(spec, &out[idle[i]], idle[i], NULL, stop_code, NULL);
    for (int i = 0; out && i < nranks; i++) {
        if (out[i].req != MPI_REQUEST_NULL) MPI_Wait(&out[i].req, MPI_STATUS_IGNORE);
        rn_buf_free(&out[i].buf);
    }
    for (int i = 0; stop_req && i < nranks; i++)
        if (stop_req[i] != MPI_REQUEST_NULL) MPI_Wait(&stop_req[i], MPI_STATUS_IGNORE);
    free(out), free(busy), free(stop_sent), free(stop_req);
    if (h->tick && rc == 0) rc = h->tick(h->user, e);
    if (rc == 0) rc = c.stopping;
    free(idle), free(results), free(rptr);
    rn_buf_free(&buf);
    graph_free(&c.g);
    return rc;
}

/* The stop flag's poll hook on a worker: the coordinator's TAG_STOP. */
static int stop_message(void *user) {
    (void)user;
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return 0;
    int32_t word;
    MPI_Recv(&word, 1, MPI_INT32_T, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return 1;
}

/* A worker's note goes to the coordinator from this buffer; never waiting:
 * while the last one is on its way, a new one is dropped. */
typedef struct note_out {
    unsigned char buf[RN_PROGRESS_MSG_BYTES];
    MPI_Request req;
} note_out;

static void worker_note(void *user, double fraction) {
    note_out *o = user;
    rn_task_progress p;
    if (!note_of(fraction, &p)) return;
    if (o->req != MPI_REQUEST_NULL) {
        int sent = 0;
        MPI_Test(&o->req, &sent, MPI_STATUS_IGNORE);
        if (!sent) return;
    }
    rn_pack_progress(o->buf, &p);
    if (MPI_Isend(o->buf, (int)sizeof o->buf, MPI_BYTE, 0, TAG_PROGRESS, MPI_COMM_WORLD, &o->req) != MPI_SUCCESS)
        o->req = MPI_REQUEST_NULL; /* a lost note only delays the bar */
}

static int run_worker(const rn_ctx *ctx, ip_err *e) {
    rn_buf out = {0}, in = {0};
    int32_t zero = 0;
    if (rn_buf_put(&out, &zero, sizeof zero) != 0) return ip_fail(e, "out of memory");
    int rc = 0, stopped = 0;
    ip_stop_set_poll(stop_message, NULL, 0.05);
    note_out notes = {.req = MPI_REQUEST_NULL};
    ip_progress_set_hook(worker_note, &notes, RN_NOTE_SEND);
    for (;;) {
        if (MPI_Send(out.p, (int)out.len, MPI_BYTE, 0, TAG_REQ, MPI_COMM_WORLD) != MPI_SUCCESS) {
            rn_buf_free(&out);
            ip_progress_set_hook(NULL, NULL, 0);
            return ip_fail(e, "rank %d: MPI_Send to the coordinator failed", ctx->rank);
        }
        /* wait for work without spinning */
        long backoff = 20;
        MPI_Status st;
        for (;;) {
            int flag = 0;
            MPI_Iprobe(0, TAG_WORK, MPI_COMM_WORLD, &flag, &st);
            if (flag) break;
            sleep_us(backoff);
            if (backoff < 2000) backoff *= 2;
        }
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        in.len = in.pos = 0;
        if (count < (int)sizeof(int32_t)) {
            rc = ip_fail(e, "rank %d: bad message from the coordinator", ctx->rank);
            break;
        }
        if ((size_t)count > in.cap) {
            unsigned char *p = realloc(in.p, (size_t)count);
            if (!p) {
                rc = ip_fail(e, "rank %d: out of memory receiving %d bytes", ctx->rank, count);
                break;
            }
            in.p = p, in.cap = (size_t)count;
        }
        MPI_Recv(in.p, count, MPI_BYTE, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        in.len = (size_t)count;
        int32_t n = STOP_DONE;
        if (rn_buf_get(&in, &n, sizeof n) != 0 || n < 0) { /* told to stop */
            stopped = n == STOP_INTERRUPTED;
            break;
        }
        out.len = 0;
        rn_buf_put(&out, &n, sizeof n);
        ip_arena a = {0}; /* the batch's tasks: values and strings, freed together */
        for (int i = 0; i < n && rc == 0; i++) {
            rn_task t;
            if (rn_unpack_task(&in, &t, &a) != 0) {
                rc = ip_fail(e, "rank %d: malformed task from the coordinator", ctx->rank);
                break;
            }
            rn_result r;
            rn_run_task(&t, ctx, &r);
            int bad = rn_pack_result(&out, &r);
            ip_metrics_free(&r.metrics);
            if (bad) rc = ip_fail(e, "rank %d: out of memory packing results", ctx->rank);
        }
        ip_arena_free(&a);
        if (rc != 0) break;
    }
    ip_stop_set_poll(NULL, NULL, 0);
    ip_progress_set_hook(NULL, NULL, 0);
    if (notes.req != MPI_REQUEST_NULL) MPI_Wait(&notes.req, MPI_STATUS_IGNORE); /* 20 bytes: sent eagerly */
    while (stop_message(NULL)) { /* a stop that crossed this worker's last report: nothing left unreceived */
    }
    rn_buf_free(&out);
    rn_buf_free(&in);
    return rc != 0 ? rc : stopped;
}

/* A string from rank 0 to every rank (into buf[cap] on the others). */
static int bcast_str(char *buf, size_t cap, int rank) {
    int len = rank == 0 ? (int)strlen(buf) : 0;
    if (MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD) != MPI_SUCCESS || len < 0 || (size_t)len >= cap) return -1;
    return MPI_Bcast(buf, len + 1, MPI_CHAR, 0, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

/* The coordinator's data section and checkpoint settings go to every worker (which loaded no spec). */
static int share_ctx(const rn_ctx *mine, rn_ctx *ctx, int rank, char *src, char *state_dir, size_t cap, ip_err *e) {
    unsigned long long lim[2] = {0, 0};
    double every = 0;
    if (rank == 0) {
        snprintf(src, cap, "%s", mine->data_source ? mine->data_source : "");
        snprintf(state_dir, cap, "%s", mine->state_dir ? mine->state_dir : "");
        lim[0] = mine->train_limit, lim[1] = mine->test_limit;
        every = mine->checkpoint_every;
    }
    if (bcast_str(src, cap, rank) != 0 || bcast_str(state_dir, cap, rank) != 0 ||
        MPI_Bcast(lim, 2, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD) != MPI_SUCCESS ||
        MPI_Bcast(&every, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ip_fail(e, "rank %d: MPI_Bcast of the data section failed", rank);
    ctx->data_source = src;
    ctx->state_dir = state_dir;
    ctx->train_limit = (size_t)lim[0], ctx->test_limit = (size_t)lim[1];
    ctx->checkpoint_every = every;
    return 0;
}

static int sched_run(const rn_spec *spec, const rn_ctx *ctx, rn_status *status, const rn_sched_hooks *hooks,
                     const rn_sched_opts *opts, ip_err *e) {
    rn_sched_opts o = {64, 0.05};
    if (opts) {
        if (opts->max_batch > 0) o.max_batch = opts->max_batch < 256 ? opts->max_batch : 256;
        if (opts->batch_seconds > 0) o.batch_seconds = opts->batch_seconds;
    }
    int inited = 0, nranks = 1, rank = 0;
    MPI_Initialized(&inited);
    if (inited) {
        MPI_Comm_size(MPI_COMM_WORLD, &nranks);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    }
    if (nranks <= 1) return run_serial(spec, ctx, status, hooks, e);
    char src[1100], state_dir[1100];
    rn_ctx wctx = *ctx;
    if (share_ctx(ctx, &wctx, rank, src, state_dir, sizeof src, e) != 0) return -1;
    if (rank == 0) return run_coordinator(spec, status, hooks, &o, nranks, e);
    return run_worker(&wctx, e);
}

int rn_sched_run(const rn_spec *spec, const rn_ctx *ctx, rn_status *status, const rn_sched_hooks *hooks,
                 const rn_sched_opts *opts, ip_err *e) {
    /* every rank that runs tasks keeps its inputs for the next ones (docs/performance.md "Per-task overhead") */
    if (rn_cache_setup(e) != 0) return -1;
    int rc = sched_run(spec, ctx, status, hooks, opts, e);
    rn_cache_teardown();
    return rc;
}
