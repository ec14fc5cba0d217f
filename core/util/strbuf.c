#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

int ip_strbuf_reserve(ip_strbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) return b->oom = 1, -1;
    b->p = np;
    b->cap = nc;
    return 0;
}

void ip_strbuf_put(ip_strbuf *b, const char *s, size_t n) {
    if (ip_strbuf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void ip_strbuf_add(ip_strbuf *b, const char *s) { ip_strbuf_put(b, s, strlen(s)); }

void ip_strbuf_ch(ip_strbuf *b, char c) { ip_strbuf_put(b, &c, 1); }

void ip_strbuf_free(ip_strbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
