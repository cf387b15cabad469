/* The `muon` command's subcommands. Each one is `int cli_NAME(int argc,
 * char **argv)` where argv[0] is the subcommand's name ("ortho") and the
 * flags follow; it returns the process exit code:
 *   0  success
 *   1  runtime error (I/O, malformed file, numeric failure)
 *   2  usage error (unknown command or flag, bad or missing value)
 * Messages go to stderr as "muon NAME: ...". `NAME --help` prints the
 * usage on stdout and returns 0. A new subcommand is a new file
 * src/cli/cmd_NAME.c, one declaration here and one row in main.c's table. */
#ifndef MUON_CLI_H
#define MUON_CLI_H

#include "cli/args.h"
#include "muon.h"

enum { CLI_OK = 0, CLI_RUNTIME = 1, CLI_USAGE = 2 };

int cli_ortho(int argc, char **argv); /* cmd_ortho.c */
int cli_bench(int argc, char **argv); /* cmd_bench.c: ortho, step, train, sgemm, sizing */
int cli_train(int argc, char **argv);     /* cmd_train.c */
int cli_compare(int argc, char **argv);   /* cmd_compare.c */
int cli_sample(int argc, char **argv);    /* cmd_sample.c */
int cli_ckpt_diff(int argc, char **argv); /* cmd_ckpt_diff.c */
int cli_exp(int argc, char **argv);       /* cmd_exp.c */
/* A new subcommand: declare it here and add a row to main.c's table. */

/* Shared by commands that take orthogonalization flags (defined in
 * cmd_ortho.c): reads --method, --coeffs, --steps and --aol from a (those
 * absent from a's flag table keep the default) into *cfg, starting from
 * muon_ortho_config_default(). Returns 0 or 2 after a usage message. */
int cli_ortho_config_from_args(const cli_args *a, muon_ortho_config *cfg);
/* Help text of --restarts, shared by muon ortho and muon bench ortho. */
#define CLI_RESTARTS_HELP                                                                          \
    "Gram NS restarts: steps (e.g. 3 or 2,4) or none (default 3; faster without,"                  \
    " less close to NS on ill-conditioned input, see docs/ortho.md)"
/* --restarts into c->gram_restarts (after c's method and steps are set);
 * 0, or 2 after a usage message. */
int cli_get_restarts(const cli_args *a, muon_ortho_config *c);

/* --precision fp32|mixed into *out (left as it is when the flag is absent,
 * so a resumed run keeps its checkpoint's). Returns 0 or 2 after a usage
 * message. */
int cli_get_precision(const cli_args *a, muon_precision *out);

#endif
