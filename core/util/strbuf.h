/* A growable string (journal lines, task keys, sort keys): appends never
 * fail loudly; an allocation failure sets `oom` and later appends do
 * nothing, so a builder checks once at the end. The text stays
 * NUL-terminated. */
#ifndef IP_STRBUF_H
#define IP_STRBUF_H

#include <stddef.h>

typedef struct ip_strbuf {
    char *p;           /* NULL until the first append */
    size_t len, cap;
    int oom;
} ip_strbuf;

/* Room for `extra` more bytes (and the NUL): 0, or -1 (oom set). */
int ip_strbuf_reserve(ip_strbuf *b, size_t extra);
void ip_strbuf_put(ip_strbuf *b, const char *s, size_t n);
void ip_strbuf_add(ip_strbuf *b, const char *s);
void ip_strbuf_ch(ip_strbuf *b, char c);
void ip_strbuf_free(ip_strbuf *b);

#endif
