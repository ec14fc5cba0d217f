/* A bump allocator: many small, long-lived allocations (a spec's million
 * tasks, their keys and values) in few large blocks, freed together. */
#ifndef IP_ARENA_H
#define IP_ARENA_H

#include <stddef.h>

typedef struct ip_arena {
    struct ip_arena_block *head;
    size_t used;       /* bytes handed out (statistics) */
} ip_arena;

/* n zeroed bytes aligned for any type, or NULL when out of memory. */
void *ip_arena_alloc(ip_arena *a, size_t n);
void ip_arena_free(ip_arena *a);

#endif
