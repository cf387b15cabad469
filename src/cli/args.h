/* A small long-flag parser shared by every `muon` subcommand.
 *
 *     static const cli_flag flags[] = {
 *         {"in", "PATH", CLI_VALUE, "input matrix (.npy)"},
 *         {"shape", "RxC", CLI_VALUE | CLI_REPEAT, "shape(s), repeatable or a,b"},
 *         {"json", NULL, CLI_SWITCH, "one JSON object per line"},
 *     };
 *     cli_args a;
 *     int rc = cli_args_parse(&a, "muon ortho", flags, 3, 0, argc, argv);
 *     if (rc) return rc;                  // 2: message already on stderr
 *     if (a.help) { usage(stdout); cli_args_free(&a); return 0; }
 *     long steps;
 *     if ((rc = cli_get_long(&a, "steps", 5, 1, 1000, &steps))) ...;
 *
 * Accepted: `--name value`, `--name=value`, switches `--name`, `--help`/`-h`,
 * `--` ending the flags, and up to max_positional plain arguments. Errors
 * (unknown flag, missing value, a value given to a switch, a non-repeatable
 * flag given twice, a bad number) print "PROG: ..." on stderr and return 2,
 * the CLI's usage-error exit code. argv[0] is the command name and skipped. */
#ifndef MUON_CLI_ARGS_H
#define MUON_CLI_ARGS_H

#include <stdio.h>

enum {
    CLI_SWITCH = 0, /* --name, no value */
    CLI_VALUE = 1,  /* --name VALUE or --name=VALUE */
    CLI_REPEAT = 2, /* may be given more than once (with CLI_VALUE) */
};

typedef struct {
    const char *name;    /* without the leading "--" */
    const char *metavar; /* shown in help, e.g. "PATH"; NULL for switches */
    int kind;            /* CLI_SWITCH, CLI_VALUE, CLI_VALUE | CLI_REPEAT */
    const char *help;    /* one line */
} cli_flag;

typedef struct {
    int flag;          /* index into the flag table */
    const char *value; /* NULL for switches; points into argv */
} cli_occurrence;

typedef struct {
    const char *prog; /* "muon ortho": prefix of every message */
    const cli_flag *flags;
    int nflags;
    cli_occurrence *occ;
    int nocc;
    const char **pos; /* positional arguments */
    int npos;
    int help; /* --help or -h was given */
    char **lists; /* strings owned by cli_get_list results */
    int nlists;
} cli_args;

/* Parse argv[1..argc) against the table. Returns 0, or 2 after printing a
 * message (a is then freed). */
int cli_args_parse(cli_args *a, const char *prog, const cli_flag *flags, int nflags,
                   int max_positional, int argc, char **argv);
void cli_args_free(cli_args *a);

/* Times the flag was given (0 when absent). */
int cli_count(const cli_args *a, const char *name);
/* The last value given, or def when absent. */
const char *cli_get_str(const cli_args *a, const char *name, const char *def);
/* Like cli_get_str but a missing flag is an error: returns 2 after
 * "PROG: --name is required". */
int cli_require_str(const cli_args *a, const char *name, const char **out);
/* Integer / real in [min, max]; def when absent. Returns 0, or 2 after e.g.
 * "muon ortho: --steps must be an integer >= 1, got 'abc'". */
int cli_get_long(const cli_args *a, const char *name, long def, long min, long max, long *out);
int cli_get_int(const cli_args *a, const char *name, int def, int min, int max, int *out);
int cli_get_double(const cli_args *a, const char *name, double def, double min, double max,
                   double *out);
/* Every value of a (repeatable) flag, each split at commas, empty items
 * dropped: "--threads 1,2 --threads 4" gives {"1", "2", "4"}. *items stays
 * valid until cli_args_free. Returns 0 (n = 0 when absent) or 1 (no memory). */
int cli_get_list(cli_args *a, const char *name, const char ***items, int *n);
/* Parse one integer in [min, max] named by flag for messages; 0 or 2. */
int cli_parse_long(const cli_args *a, const char *name, const char *text, long min, long max,
                   long *out);

/* Print "PROG: " + message to stderr; returns 2 (for `return cli_usage_error(...)`). */
int cli_usage_error(const cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the flag table, one aligned line per flag. */
void cli_print_flags(FILE *f, const cli_flag *flags, int nflags);

#endif
