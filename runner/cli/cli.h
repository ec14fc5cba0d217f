/* Command-line options: one table per command drives parsing and --help, so
 * every command gets the same behaviour: `--name value` or `--name=value`,
 * --help prints usage and exits 0, a bad argument prints one line and exits 2. */
#ifndef IP_CLI_H
#define IP_CLI_H

#include <stddef.h>
#include <stdint.h>

/* CLI_LIST: a CLI_STR that may be repeated; the values are joined with ','. */
typedef enum { CLI_STR, CLI_INT, CLI_SIZE, CLI_U64, CLI_FLOAT, CLI_FLAG, CLI_LIST } cli_type;

typedef struct cli_opt {
    const char *name;     /* without the leading "--" */
    cli_type type;
    void *ptr;            /* char[cap] (STR, LIST) / int / size_t / uint64_t / float / int (flag) */
    size_t cap;           /* CLI_STR buffer size */
    const char *metavar;  /* shown in help, e.g. "N" */
    const char *help;
} cli_opt;

typedef struct cli_cmd {
    const char *name;     /* "train" */
    const char *usage;    /* "ipsweep train [options]" */
    const char *summary;  /* one paragraph */
    cli_opt *opts;
    int nopts;
    int max_positional;   /* positional arguments accepted (collected in positional[]) */
    const char *positional[4];
    int npositional;
} cli_cmd;

enum { CLI_OK = 0, CLI_HELP = 1, CLI_ERROR = 2 };

/* Parses argv[0..argc) (argv[0] is the first argument after the command name). */
int cli_parse(cli_cmd *c, int argc, char **argv);
void cli_help(const cli_cmd *c);
/* Prints "ipsweep <cmd>: <message>" to stderr and returns CLI_ERROR (exit status 2). */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
