/* `muon compare`: the same model, data order and budget trained with AdamW
 * and with the Muon hybrid, each at the best learning rate of the same
 * sweep, and a report of how many steps Muon needs to reach AdamW's final
 * validation loss. */
#ifndef MUON_TRAIN_COMPARE_H
#define MUON_TRAIN_COMPARE_H

#include "train/train.h"

#define COMPARE_MAX_GRID 16
#define COMPARE_MAX_SEEDS 8

typedef struct {
    train_config base;              /* model, data, budget; out_dir = the report dir */
    double grid[COMPARE_MAX_GRID];  /* learning rates, ascending */
    int n_grid;
    long sweep_steps;               /* budget of each sweep run */
    int max_extend;                 /* grid extensions when the best is at an edge */
    int seeds;                      /* final runs per optimizer: seeds base.seed, +1, ... */
} compare_config;

/* Default grid: 2e-3 * 2^k, k = 0..4 (2e-3 .. 3.2e-2); 3 seeds. */
compare_config compare_config_default(void);

/* Runs the sweep and each optimizer's final run once per seed (the
 * speedup is given per seed, with its mean and range), writes DIR/report.md,
 * DIR/compare.svg and DIR/summary.json. 0, 1 (runtime) or 2 (config). */
int compare_run(const compare_config *c, char *err, size_t errcap);

/* Steps at which a validation curve first reaches target, by linear
 * interpolation between evaluations; -1 when it never does. Exposed for
 * the tests. */
double compare_steps_to_reach(const long *steps, const double *loss, int n, double target);

#endif
