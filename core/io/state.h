/* Task state files: what a long task saves to resume after a time limit
 * (docs/checkpoint.md "Task state files"). A state file is a list of named
 * byte parts (the weights, the optimiser's moments, the loop's position, the
 * metrics so far), tagged with the ident of the task it belongs to and
 * closed by a CRC-32; it is replaced whole (util/atomic_file.h), so a reader
 * sees the previous state or the new one. Native byte order (little-endian
 * x86-64 and arm64): a file from a machine of the other order is refused.
 *
 * Layout: "IPSTATE\0", u32 version, u32 0x01020304 (byte order), u64 ident,
 * u32 nparts, u32 0, u64 file size; per part: name (32 bytes, NUL-padded),
 * u64 size, the bytes; u32 CRC-32 (zlib) of everything before it. */
#ifndef IP_STATE_H
#define IP_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define IP_STATE_VERSION 1
#define IP_STATE_NAME_LEN 32
#define IP_STATE_MAX_PARTS 32

typedef struct ip_state_part {
    char name[IP_STATE_NAME_LEN];
    const void *data;
    size_t bytes;
} ip_state_part;

/* A state file read back: parts point into buf. */
typedef struct ip_state {
    unsigned char *buf;
    size_t len;
    uint64_t ident;
    ip_state_part parts[IP_STATE_MAX_PARTS];
    int nparts;
} ip_state;

/* Writes the parts as path's whole new content (atomically). */
int ip_state_save(const char *path, uint64_t ident, const ip_state_part *parts, int nparts, ip_err *e);
/* Reads path: 1 when it holds a state of `ident`, 0 when there is no file
 * or it belongs to another task (s stays empty: start from the beginning),
 * -1 when it is damaged (truncated, bad checksum, bad layout: an
 * IP_ERR_INPUT error naming the file and saying how to start over). */
int ip_state_load(ip_state *s, const char *path, uint64_t ident, ip_err *e);
void ip_state_free(ip_state *s);
/* The part called name, or NULL. */
const ip_state_part *ip_state_find(const ip_state *s, const char *name);
/* Copies part name into dst, which must be exactly `bytes` long: a missing
 * part or another size is an error naming both (path names the file). */
int ip_state_get(const ip_state *s, const char *path, const char *name, void *dst, size_t bytes, ip_err *e);

#endif
