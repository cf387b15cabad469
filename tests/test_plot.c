/* The SVG writer: well-formed output, nice ticks, no partial files. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"
#include "train/plot.h"

TEST(plot_ticks_are_round_and_cover_range)
{
    double t[16];
    int n = plot_nice_ticks(0.3, 9.7, t, 16);
    ASSERT(n >= 3);
    for (int i = 0; i < n; i++) {
        ASSERT(t[i] >= 0.3 - 1e-9 && t[i] <= 9.7 + 1e-9);
        ASSERT_NEAR(t[i] / 2.0, floor(t[i] / 2.0 + 0.5), 1e-9); /* step 2 */
    }
    ASSERT_EQ_INT(plot_nice_ticks(1, 1, t, 16), 0);
}

TEST(plot_writes_svg_with_every_series)
{
    double x[3] = {0, 1, 2}, y[3] = {3, 2, NAN}, y2[3] = {2.5, 2.0, 1.5};
    plot_series s[2] = {{"adamw", x, y, 3}, {"muon & co", x, y2, 3}};
    plot_panel p[2] = {{"val loss", "step", "loss", s, 2}, {"empty", "s", "l", s, 0}};
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/p.svg", tu_tmpdir());
    ASSERT_EQ_INT(plot_write_svg(path, p, 2, err, sizeof err), 0);
    char *svg = tu_read_file(path, NULL);
    ASSERT(svg != NULL);
    int ok = strncmp(svg, "<svg", 4) == 0 && strstr(svg, "</svg>") &&
             strstr(svg, "muon &amp; co") && strstr(svg, "no data") && !strstr(svg, "nan");
    int polylines = 0;
    for (char *q = svg; (q = strstr(q, "<polyline")); q++)
        polylines++;
    free(svg);
    ASSERT(ok);
    ASSERT_EQ_INT(polylines, 2);
}

TEST(plot_unwritable_path_is_an_error)
{
    char err[256] = "";
    plot_panel p = {"t", "x", "y", NULL, 0};
    ASSERT_EQ_INT(plot_write_svg("/nonexistent-dir/x.svg", &p, 1, err, sizeof err), -1);
    ASSERT(strstr(err, "/nonexistent-dir") != NULL);
}
