/* build/muon: dispatch to one file per subcommand through the table below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "muon.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help; /* one line for `muon help` */
} command;

static const command commands[] = {
    {"train", cli_train, "train a GPT language model with an optimizer of the family"},
    {"compare", cli_compare, "train with AdamW and with Muon on the same budget, side by side"},
    {"sample", cli_sample, "generate text from a checkpoint"},
    {"ckpt-diff", cli_ckpt_diff, "largest parameter difference between two checkpoints"},
    {"ortho", cli_ortho, "orthogonalize a matrix from a .npy file"},
    {"bench", cli_bench, "benchmarks: bench ortho|step|train|sgemm|sizing|backend"},
    {"exp", cli_exp, "the papers' claims, one command each: exp list | exp NAME"},
    /* a new subcommand: one row here, its declaration in cli.h */
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: muon <command> [flags]    (muon <command> --help for its flags)\n\n"
               "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n", "help", "this list, or 'muon help <command>'");
    fprintf(f, "  %-10s %s\n", "version", "print the version");
    fprintf(f, "\nexit codes: 0 ok, 1 runtime error (I/O, numeric), 2 usage error\n");
}

static const command *find(const char *name)
{
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int unknown(const char *name)
{
    fprintf(stderr, "muon: unknown command '%s' (see 'muon --help')\n", name);
    return 2;
}

/* libgomp's idle threads spin for a long time by default, taking the
 * cores that OpenBLAS's threads or other programs need (docs/bench.md).
 * libgomp reads its settings once, when it loads, before main, and has no
 * call to change them later, so the command alone (never the library)
 * sets a short spin and starts itself again, unless the user chose a wait
 * policy. The second start removes the two variables again: libgomp has
 * read them, and the programs the command runs see the user's environment
 * unchanged. */
#define SPIN_MARK "MUON_SHORT_SPIN_SET"
static void prefer_short_spin(char **argv)
{
    if (getenv(SPIN_MARK)) {
        unsetenv("GOMP_SPINCOUNT");
        unsetenv(SPIN_MARK);
        return;
    }
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    /* under valgrind /proc/self/exe is valgrind's tool, which refuses to be
     * started by itself; valgrind announces itself through its preload */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload"))
        return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1) == 0 && setenv(SPIN_MARK, "1", 1) == 0)
        execv("/proc/self/exe", argv);
    /* exec failed (no /proc): go on with the defaults, environment as given */
    unsetenv("GOMP_SPINCOUNT");
    unsetenv(SPIN_MARK);
}

int main(int argc, char **argv)
{
    prefer_short_spin(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            const command *c = find(argv[2]);
            if (!c)
                return unknown(argv[2]);
            static char help_flag[] = "--help";
            char *sub[] = {argv[2], help_flag, NULL};
            return c->run(2, sub);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("muon %s\n", muon_version());
        return 0;
    }
    const command *c = find(cmd);
    if (!c && cmd[0] == '-') {
        fprintf(stderr, "muon: unknown flag '%s' (see 'muon --help')\n", cmd);
        return 2;
    }
    if (!c)
        return unknown(cmd);
    return c->run(argc - 1, argv + 1);
}
