/* `muon exp NAME [--out DIR] [--quick] [--seeds N]`: one experiment of
 * src/exp/, writing DIR/results.json, DIR/README.md and its plots. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "exp/exp.h"

static const cli_flag flags[] = {
    {"out", "DIR", CLI_VALUE, "output directory (default exp-out/NAME)"},
    {"quick", NULL, CLI_SWITCH, "the short version (under a minute; what make test runs)"},
    {"seeds", "N", CLI_VALUE, "seeds of the noise-dependent claims (default per experiment)"},
    {"threads", "N", CLI_VALUE, "threads (default: all cores)"},
    {"data", "PATH", CLI_VALUE, "text for the GPT experiments (default: a built-in corpus)"},
};
#define N_FLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: muon exp list | muon exp NAME [--out DIR] [--quick] [--seeds N]\n\n"
               "Reproduces one claim of the papers (docs/algorithms.md, docs/results.md) and\n"
               "writes DIR/results.json, DIR/README.md and SVG plots.\n\nexperiments:\n");
    for (int i = 0; i < exp_count; i++)
        fprintf(f, "  %-11s %s\n", exp_table[i].name, exp_table[i].claim);
    fprintf(f, "\nflags:\n");
    cli_print_flags(f, flags, N_FLAGS);
}

int cli_exp(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        for (int i = 0; i < exp_count; i++)
            printf("%-11s %s\n", exp_table[i].name, exp_table[i].claim);
        return 0;
    }
    cli_args a;
    int rc = cli_args_parse(&a, "muon exp", flags, N_FLAGS, 1, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    if (a.npos != 1) {
        usage(stderr);
        cli_args_free(&a);
        return 2;
    }
    const exp_def *d = exp_find(a.pos[0]);
    if (!d) {
        rc = cli_usage_error(&a, "unknown experiment '%s' (muon exp list)", a.pos[0]);
        cli_args_free(&a);
        return rc;
    }
    static exp_ctx x;
    memset(&x, 0, sizeof x);
    x.name = d->name;
    x.quick = cli_count(&a, "quick") > 0;
    x.data = cli_get_str(&a, "data", NULL);
    const char *out = cli_get_str(&a, "out", NULL);
    if (out)
        snprintf(x.out_dir, sizeof x.out_dir, "%s", out);
    else
        snprintf(x.out_dir, sizeof x.out_dir, "exp-out/%s", d->name);
    if ((rc = cli_get_int(&a, "seeds", d->seeds, 1, 100, &x.seeds)) ||
        (rc = cli_get_int(&a, "threads", 0, 0, 1024, &x.threads))) {
        cli_args_free(&a);
        return rc;
    }
    size_t n = 0;
    n += (size_t)snprintf(x.command, sizeof x.command, "muon exp");
    for (int i = 1; i < argc && n < sizeof x.command; i++)
        n += (size_t)snprintf(x.command + n, sizeof x.command - n, " %s", argv[i]);
    rc = exp_run(d, &x);
    if (rc)
        fprintf(stderr, "muon exp %s: %s\n", d->name, x.err);
    else
        printf("wrote %s/{results.json,README.md} and plots\n", x.out_dir);
    cli_args_free(&a);
    return rc;
}
