/* Task state files (state.h). */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../util/atomic_file.h"
#include "../util/checked.h"

static const char MAGIC[8] = "IPSTATE";  /* with its NUL: 8 bytes */
#define ORDER_MARK 0x01020304u
#define HEADER_BYTES 40
#define PART_HEADER_BYTES (IP_STATE_NAME_LEN + 8)

typedef struct header {
    char magic[8];
    uint32_t version, order;
    uint64_t ident;
    uint32_t nparts, zero;
    uint64_t size;
} header;
_Static_assert(sizeof(header) == HEADER_BYTES, "the header has no padding");

typedef struct part_header {
    char name[IP_STATE_NAME_LEN];
    uint64_t bytes;
} part_header;
_Static_assert(sizeof(part_header) == PART_HEADER_BYTES, "a part header has no padding");

int ip_state_save(const char *path, uint64_t ident, const ip_state_part *parts, int nparts, ip_err *e) {
    if (nparts < 0 || nparts > IP_STATE_MAX_PARTS) return ip_fail(e, "saving %s: %d parts", path, nparts);
    header h = {.version = IP_STATE_VERSION, .order = ORDER_MARK, .ident = ident, .nparts = (uint32_t)nparts};
    memcpy(h.magic, MAGIC, sizeof h.magic);
    part_header ph[IP_STATE_MAX_PARTS];
    const void *bufs[2 + 2 * IP_STATE_MAX_PARTS];
    size_t sizes[2 + 2 * IP_STATE_MAX_PARTS];
    int n = 0;
    uint64_t total = HEADER_BYTES + 4;
    bufs[n] = &h, sizes[n++] = HEADER_BYTES;
    for (int i = 0; i < nparts; i++) {
        memset(&ph[i], 0, sizeof ph[i]);
        size_t l = strlen(parts[i].name);
        if (l == 0 || l >= IP_STATE_NAME_LEN) return ip_fail(e, "saving %s: bad part name", path);
        memcpy(ph[i].name, parts[i].name, l);
        ph[i].bytes = parts[i].bytes;
        bufs[n] = &ph[i], sizes[n++] = PART_HEADER_BYTES;
        bufs[n] = parts[i].data, sizes[n++] = parts[i].bytes;
        total += PART_HEADER_BYTES + parts[i].bytes;
    }
    h.size = total;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        /* zlib takes uInt lengths: feed large parts in pieces */
        const unsigned char *p = bufs[i];
        for (size_t left = sizes[i]; left > 0;) {
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, chunk);
            p += chunk, left -= chunk;
        }
    }
    uint32_t c = (uint32_t)crc;
    bufs[n] = &c, sizes[n++] = 4;
    return ip_write_atomic(path, "saving task state", bufs, sizes, n, e);
}

static int damaged(ip_state *s, const char *path, const char *why, ip_err *e) {
    ip_state_free(s);
    return ip_fail_input(e, "task state %s is damaged (%s): delete it to start the task over", path, why);
}

int ip_state_load(ip_state *s, const char *path, uint64_t ident, ip_err *e) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return ip_fail(e, "reading task state %s: %s", path, strerror(errno));
    }
    header h;
    if (fread(&h, 1, sizeof h, f) != sizeof h) {
        fclose(f);
        return damaged(s, path, "shorter than its header", e);
    }
    if (memcmp(h.magic, MAGIC, sizeof h.magic) != 0) {
        fclose(f);
        return damaged(s, path, "not a task state file", e);
    }
    if (h.order != ORDER_MARK || h.version != IP_STATE_VERSION) {
        fclose(f);
        char why[96];
        snprintf(why, sizeof why, "format version %u or byte order of another machine", h.version);
        return damaged(s, path, why, e);
    }
    if (h.ident != ident) { /* another task's (or other parameters'): not ours to resume */
        fclose(f);
        return 0;
    }
    if (h.nparts > IP_STATE_MAX_PARTS || h.size < HEADER_BYTES + 4 || h.size > (uint64_t)SIZE_MAX / 2) {
        fclose(f);
        return damaged(s, path, "bad header", e);
    }
    s->len = (size_t)h.size;
    s->buf = malloc(s->len);
    if (!s->buf) {
        fclose(f);
        return ip_fail(e, "reading task state %s: out of memory for %zu bytes", path, s->len);
    }
    memcpy(s->buf, &h, sizeof h);
    size_t got = fread(s->buf + sizeof h, 1, s->len - sizeof h, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != s->len - sizeof h || extra) return damaged(s, path, "its size is not the size its header says", e);
    uint32_t want;
    memcpy(&want, s->buf + s->len - 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0, left = s->len - 4; left > 0;) {
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, s->buf + off, chunk);
        off += chunk, left -= chunk;
    }
    if ((uint32_t)crc != want) return damaged(s, path, "checksum mismatch", e);
    size_t off = HEADER_BYTES, end = s->len - 4;
    for (uint32_t i = 0; i < h.nparts; i++) {
        part_header ph;
        size_t after;
        if (ip_add_size(off, PART_HEADER_BYTES, &after) != 0 || after > end) return damaged(s, path, "truncated part", e);
        memcpy(&ph, s->buf + off, sizeof ph);
        if (ph.name[IP_STATE_NAME_LEN - 1] != 0 || ph.name[0] == 0) return damaged(s, path, "bad part name", e);
        if (ph.bytes > end - after) return damaged(s, path, "a part runs past the end", e);
        ip_state_part *p = &s->parts[s->nparts++];
        memcpy(p->name, ph.name, IP_STATE_NAME_LEN);
        p->data = s->buf + after;
        p->bytes = (size_t)ph.bytes;
        off = after + (size_t)ph.bytes;
    }
    if (off != end) return damaged(s, path, "bytes after the last part", e);
    s->ident = ident;
    return 1;
}

void ip_state_free(ip_state *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

const ip_state_part *ip_state_find(const ip_state *s, const char *name) {
    for (int i = 0; i < s->nparts; i++)
        if (strcmp(s->parts[i].name, name) == 0) return &s->parts[i];
    return NULL;
}

int ip_state_get(const ip_state *s, const char *path, const char *name, void *dst, size_t bytes, ip_err *e) {
    const ip_state_part *p = ip_state_find(s, name);
    if (!p) return ip_fail_input(e, "task state %s has no part %s: delete it to start the task over", path, name);
    if (p->bytes != bytes)
        return ip_fail_input(e, "task state %s: part %s has %zu bytes, this task needs %zu: delete it to start the "
                                "task over", path, name, p->bytes, bytes);
    memcpy(dst, p->data, bytes);
    return 0;
}
