#include "arena.h"

#include <stdlib.h>
#include <string.h>

/* Blocks start small (a worker unpacks each task into a fresh arena: a
 * large first block would cost an mmap per task) and double up to 1 MiB,
 * large enough that malloc's overhead vanishes for a million tasks. */
#define FIRST_BLOCK (4u << 10)
#define MAX_BLOCK (1u << 20)

typedef struct ip_arena_block {
    struct ip_arena_block *next;
    size_t cap, used;
    max_align_t data[]; /* aligned for any type */
} ip_arena_block;

void *ip_arena_alloc(ip_arena *a, size_t n) {
    size_t need = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (need < n) return NULL; /* overflow */
    ip_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t grow = b ? 2 * b->cap : FIRST_BLOCK;
        if (grow > MAX_BLOCK) grow = MAX_BLOCK;
        size_t cap = need > grow ? need : grow;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap, b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    a->used += need;
    memset(p, 0, n);
    return p;
}


void ip_arena_free(ip_arena *a) {
    for (ip_arena_block *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
    a->used = 0;
}
