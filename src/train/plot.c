/* A minimal SVG line-plot writer: enough for loss curves, with axes, nice
 * ticks and a legend, and no dependency beyond stdio. */
#include "train/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PANEL_W 520.0
#define PANEL_H 360.0
#define MARGIN_L 64.0
#define MARGIN_R 16.0
#define MARGIN_T 36.0
#define MARGIN_B 48.0

static const char *palette[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

int plot_nice_ticks(double lo, double hi, double *ticks, int max)
{
    if (!(hi > lo) || max < 2)
        return 0;
    double span = hi - lo, raw = span / 5.0;
    double mag = pow(10.0, floor(log10(raw)));
    double step = mag;
    if (raw / mag > 5)
        step = 10 * mag;
    else if (raw / mag > 2)
        step = 5 * mag;
    else if (raw / mag > 1)
        step = 2 * mag;
    int n = 0;
    for (double t = ceil(lo / step) * step; t <= hi + step * 1e-9 && n < max; t += step)
        ticks[n++] = fabs(t) < step * 1e-9 ? 0.0 : t;
    return n;
}

/* Data range over every finite point of a panel; pads y by 5%. */
static int panel_range(const plot_panel *p, double *x0, double *x1, double *y0, double *y1)
{
    int any = 0;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!isfinite(x) || !isfinite(y))
                continue;
            if (!any) {
                *x0 = *x1 = x;
                *y0 = *y1 = y;
                any = 1;
            }
            *x0 = fmin(*x0, x);
            *x1 = fmax(*x1, x);
            *y0 = fmin(*y0, y);
            *y1 = fmax(*y1, y);
        }
    if (!any)
        return 0;
    if (*x1 <= *x0)
        *x1 = *x0 + 1;
    if (*y1 <= *y0) {
        *y0 -= 0.5;
        *y1 += 0.5;
    }
    double pad = 0.05 * (*y1 - *y0);
    *y0 -= pad;
    *y1 += pad;
    return 1;
}

static void xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void write_panel(FILE *f, const plot_panel *p, double ox)
{
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    int has_data = panel_range(p, &x0, &x1, &y0, &y1);
    double pw = PANEL_W - MARGIN_L - MARGIN_R, ph = PANEL_H - MARGIN_T - MARGIN_B;
    double left = ox + MARGIN_L, top = MARGIN_T;
#define SX(v) (left + ((v) - x0) / (x1 - x0) * pw)
#define SY(v) (top + ph - ((v) - y0) / (y1 - y0) * ph)
    fprintf(f, "<text x=\"%.1f\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">",
            left + pw / 2);
    xml_text(f, p->title);
    fprintf(f, "</text>\n");
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#444\"/>\n", left, top, pw, ph);
    double ticks[16];
    int nt = plot_nice_ticks(x0, x1, ticks, 16);
    for (int i = 0; i < nt; i++) {
        double x = SX(ticks[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x,
                top, x, top + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n",
                x, top + ph + 16, ticks[i]);
    }
    nt = plot_nice_ticks(y0, y1, ticks, 16);
    for (int i = 0; i < nt; i++) {
        double y = SY(ticks[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                left, y, left + pw, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                left - 6, y + 4, ticks[i]);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">",
            left + pw / 2, PANEL_H - 10);
    xml_text(f, p->xlabel);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 %.1f %.1f)\">", ox + 16, top + ph / 2, ox + 16, top + ph / 2);
    xml_text(f, p->ylabel);
    fprintf(f, "</text>\n");
    if (!has_data) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">no data"
                   "</text>\n", left + pw / 2, top + ph / 2);
        return;
    }
    for (int s = 0; s < p->n_series; s++) {
        const plot_series *ser = &p->series[s];
        const char *color = palette[s % (int)(sizeof palette / sizeof palette[0])];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", color);
        for (int i = 0; i < ser->n; i++)
            if (isfinite(ser->x[i]) && isfinite(ser->y[i]))
                fprintf(f, "%.1f,%.1f ", SX(ser->x[i]), SY(ser->y[i]));
        fprintf(f, "\"/>\n");
        double ly = top + 14 + 16 * s;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/>\n", left + pw - 120, ly, left + pw - 100, ly, color);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", left + pw - 95, ly + 4);
        xml_text(f, ser->label);
        fprintf(f, "</text>\n");
    }
#undef SX
#undef SY
}

int plot_write_svg(const char *path, const plot_panel *panels, int n_panels, char *err,
                   size_t errcap)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errcap, "path too long: %s", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
               "fill=\"white\"/>\n", PANEL_W * n_panels, PANEL_H);
    for (int i = 0; i < n_panels; i++)
        write_panel(f, &panels[i], PANEL_W * i);
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
