/* `muon train`: train the GPT of docs/model.md with Muon or AdamW. The flag
 * table and its reading are shared with `muon compare` (cli_train_flags). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/train_flags.h"
#include "train/par.h"
#include "train/train.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: muon train --data PATH --out DIR [flags]\n\n"
               "Trains a GPT language model on PATH (a text file, a directory of text files,\n"
               "or llm.c token shards) and writes DIR/metrics.jsonl, DIR/checkpoint.bin and\n"
               "DIR/loss.svg. --resume continues a checkpoint bit-identically.\n\nflags:\n");
    cli_print_flags(f, cli_train_flag_table, cli_train_flag_count);
}

/* The first SIGINT/SIGTERM asks the run to stop after its step with a
 * checkpoint; a second one ends the process at once, as the default would. */
static void on_stop_signal(int sig)
{
    static volatile sig_atomic_t seen;
    if (seen) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    seen = 1;
    train_request_stop(sig);
}

/* The handler runs on a stack of its own: oneDNN's generated kernels may
 * keep data below the stack pointer beyond the 128 bytes the ABI reserves,
 * and a signal frame pushed there overwrote it (heap corruption reported
 * on a later free, docs/reliability.md). The kernel delivers a signal sent
 * to the process to its main thread unless that thread blocks it. */
static void catch_stop_signals(void)
{
    static char alt[1 << 16] __attribute__((aligned(64)));
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    int on_alt = sigaltstack(&ss, NULL) == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    /* SA_RESTART: a checkpoint being written is not interrupted */
    sa.sa_flags = SA_RESTART | (on_alt ? SA_ONSTACK : 0);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_train(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon train", cli_train_flag_table, cli_train_flag_count, 0, argc,
                            argv);
    if (rc)
        return rc;
    if (a.help) {
        usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    train_config c;
    const char *resume = NULL;
    rc = cli_train_config_from_args(&a, TRAIN_FLAGS_TRAIN, &c, &resume);
    if (rc) {
        cli_args_free(&a);
        return rc;
    }
    char err[TRAIN_ERR_LEN] = "";
    int dist = c.dist[0] != 0;
    if (dist && !train_par_available()) {
        fprintf(stderr, "muon train: --dist needs muon built with Open MPI: install "
                        "libopenmpi-dev and openmpi-bin, then rebuild (make clean && make)\n");
        cli_args_free(&a);
        return 2;
    }
    if (dist && train_par_begin(err, sizeof err)) {
        fprintf(stderr, "muon train: %s\n", err);
        cli_args_free(&a);
        return 1;
    }
    train_result res;
    if (!c.dist[0]) /* under mpirun a signal reaches the ranks at different steps */
        catch_stop_signals();
    rc = train_run(&c, resume, &res, err, sizeof err);
    int quiet = dist && train_par_rank() != 0;
    if (dist)
        train_par_end();
    if (rc && err[0])
        fprintf(stderr, "muon train: %s\n", err);
    else if (!rc && !quiet)
        printf("done: %ld steps, final train loss %.4f, val loss %.4f, %.0f tokens/s; "
               "wrote %s/{metrics.jsonl,checkpoint.bin%s}%s\n",
               res.steps_done, res.final_train_loss, res.final_val_loss, res.tokens_per_s,
               c.out_dir, res.plot_written ? ",loss.svg" : "",
               res.skipped ? "; steps with a NaN/Inf loss or gradient were skipped" : "");
    train_result_free(&res);
    cli_args_free(&a);
    return rc;
}
