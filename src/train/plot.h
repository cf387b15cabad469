/* Line plots written as standalone SVG files (loss curves, comparisons). */
#ifndef MUON_TRAIN_PLOT_H
#define MUON_TRAIN_PLOT_H

#include <stddef.h>

typedef struct {
    const char *label;
    const double *x, *y; /* n points; non-finite points are skipped */
    int n;
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    const plot_series *series;
    int n_series;
} plot_panel;

/* Write panels side by side into one SVG at path (temp file + rename).
 * Returns 0, or -1 with a message in err. */
int plot_write_svg(const char *path, const plot_panel *panels, int n_panels, char *err,
                   size_t errcap);

/* "Nice" axis ticks covering [lo, hi]: returns the count (<= max) written to
 * ticks. Exposed for the tests. */
int plot_nice_ticks(double lo, double hi, double *ticks, int max);

#endif
