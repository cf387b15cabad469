/* `muon compare`: AdamW and the Muon hybrid on the same model, data and
 * budget, each at its best rate from the same sweep (train/compare.c). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/train_flags.h"
#include "train/compare.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: muon compare --data PATH --out DIR [--steps N] [flags]\n\n"
               "Sweeps the learning rate of AdamW and of Muon (hybrid, moonlight scale) on the\n"
               "same grid with a short budget, trains both at their best rate for --steps, and\n"
               "writes DIR/report.md, DIR/compare.svg and DIR/summary.json.\n\nflags:\n");
    cli_print_flags(f, cli_compare_flag_table, cli_compare_flag_count);
}

int cli_compare(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon compare", cli_compare_flag_table, cli_compare_flag_count, 0,
                            argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    compare_config cc = compare_config_default();
    const char *resume;
    rc = cli_train_config_from_args(&a, TRAIN_FLAGS_COMPARE, &cc.base, &resume);
    const char **items;
    int n = 0;
    if (!rc && cli_get_list(&a, "lr-grid", &items, &n))
        rc = 1;
    if (!rc && n > 0) {
        if (n > COMPARE_MAX_GRID)
            rc = cli_usage_error(&a, "--lr-grid takes at most %d rates", COMPARE_MAX_GRID);
        for (int i = 0; !rc && i < n; i++) {
            char *end;
            cc.grid[i] = strtod(items[i], &end);
            if (*end || !(cc.grid[i] > 0) || (i && !(cc.grid[i] > cc.grid[i - 1])))
                rc = cli_usage_error(&a, "--lr-grid must be positive rates in ascending order, "
                                         "got '%s'", items[i]);
        }
        cc.n_grid = n;
    }
    if (!rc)
        rc = cli_get_long(&a, "sweep-steps", cc.base.steps / 4 > 0 ? cc.base.steps / 4 : 1, 1,
                          100000000, &cc.sweep_steps);
    if (!rc)
        rc = cli_get_int(&a, "seeds", cc.seeds, 1, COMPARE_MAX_SEEDS, &cc.seeds);
    if (!rc && cc.base.progress == TRAIN_PROGRESS_AUTO)
        cc.base.progress = TRAIN_PROGRESS_LINES;
    if (!rc) {
        char err[TRAIN_ERR_LEN];
        rc = compare_run(&cc, err, sizeof err);
        if (rc)
            fprintf(stderr, "muon compare: %s\n", err);
    }
    cli_args_free(&a);
    return rc;
}
