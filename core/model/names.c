/* The names of the model's choices (model.h): architectures, norms, schemes,
 * protocols, as keys, checkpoints and messages spell them. */
#include "model.h"

#include <string.h>

const char *const ip_arch_names[] = {"small-p", "small-p-narrow", "small-p-wide", "alexnet-p", "resnet18-p",
                                     NULL};

static const char *const norm_names[] = {"bn", "gn"};
static const char *const scheme_names[] = {"baseline", "v1", "v2", "v3"};

const char *ip_norm_name(ip_norm_kind k) { return (unsigned)k < 2 ? norm_names[k] : "?"; }
const char *ip_scheme_name(ip_scheme s) { return (unsigned)s < 4 ? scheme_names[s] : "?"; }

int ip_norm_parse(const char *s, ip_norm_kind *out) {
    for (int i = 0; i < 2; i++)
        if (strcmp(s, norm_names[i]) == 0) return *out = (ip_norm_kind)i, 0;
    return -1;
}

int ip_scheme_parse(const char *s, ip_scheme *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, scheme_names[i]) == 0) return *out = (ip_scheme)i, 0;
    return -1;
}

static const char *const protocol_names[] = {"paper", "deepipr-code"};

const char *ip_protocol_name(int protocol) { return (unsigned)protocol < 2 ? protocol_names[protocol] : "?"; }

int ip_protocol_parse(const char *s, int *out) {
    for (int i = 0; i < 2; i++)
        if (strcmp(s, protocol_names[i]) == 0) return *out = i, 0;
    return -1;
}
