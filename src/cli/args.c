/* The shared long-flag parser (see args.h). Values point into argv, so the
 * parser copies nothing except the comma-split lists. */
#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const cli_args *a, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", a->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int find_flag(const cli_args *a, const char *name, size_t len)
{
    for (int i = 0; i < a->nflags; i++)
        if (strlen(a->flags[i].name) == len && !strncmp(a->flags[i].name, name, len))
            return i;
    return -1;
}

/* Edit distance, capped, for "did you mean" on a mistyped flag. */
static int edit_distance(const char *s, size_t n, const char *t)
{
    size_t m = strlen(t);
    if (n > 40 || m > 40)
        return 99;
    int prev[41], cur[41];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int c = prev[j - 1] + (s[i - 1] != t[j - 1]);
            if (prev[j] + 1 < c)
                c = prev[j] + 1;
            if (cur[j - 1] + 1 < c)
                c = cur[j - 1] + 1;
            cur[j] = c;
        }
        memcpy(prev, cur, sizeof(int) * (m + 1));
    }
    return prev[m];
}

static int unknown_flag(const cli_args *a, const char *arg, const char *name, size_t len)
{
    int best = -1, best_d = 3;
    for (int i = 0; i < a->nflags; i++) {
        int d = edit_distance(name, len, a->flags[i].name);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    if (best >= 0)
        return cli_usage_error(a, "unknown flag '%s' (did you mean --%s?)", arg,
                               a->flags[best].name);
    return cli_usage_error(a, "unknown flag '%s' (see '%s --help')", arg, a->prog);
}

int cli_args_parse(cli_args *a, const char *prog, const cli_flag *flags, int nflags,
                   int max_positional, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->prog = prog;
    a->flags = flags;
    a->nflags = nflags;
    int cap = argc > 0 ? argc : 1;
    a->occ = malloc(sizeof(cli_occurrence) * (size_t)cap);
    a->pos = malloc(sizeof(const char *) * (size_t)cap);
    if (!a->occ || !a->pos) {
        cli_args_free(a);
        fprintf(stderr, "%s: out of memory parsing the command line\n", prog);
        return 2;
    }
    int rc = 0, flags_done = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *arg = argv[i];
        if (!flags_done && !strcmp(arg, "--")) {
            flags_done = 1;
            continue;
        }
        if (flags_done || arg[0] != '-' || arg[1] == 0 || (arg[1] >= '0' && arg[1] <= '9') ||
            arg[1] == '.') {
            /* plain arguments; a lone "-" (stdin) and negative numbers too */
            if (a->npos >= max_positional)
                rc = cli_usage_error(a, "unexpected argument '%s' (see '%s --help')", arg, prog);
            else
                a->pos[a->npos++] = arg;
            continue;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            a->help = 1;
            continue;
        }
        if (arg[1] != '-') {
            rc = cli_usage_error(a, "unknown flag '%s' (flags are long: --name)", arg);
            break;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int f = find_flag(a, name, len);
        if (f < 0) {
            rc = unknown_flag(a, arg, name, len);
            break;
        }
        const cli_flag *fl = &flags[f];
        const char *value = NULL;
        if (!(fl->kind & CLI_VALUE)) {
            if (eq) {
                rc = cli_usage_error(a, "--%s takes no value, got '%s'", fl->name, eq + 1);
                break;
            }
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            value = argv[++i];
        } else {
            rc = cli_usage_error(a, "--%s needs a value (%s)", fl->name,
                                 fl->metavar ? fl->metavar : "VALUE");
            break;
        }
        if (!(fl->kind & CLI_REPEAT) && cli_count(a, fl->name) > 0) {
            rc = cli_usage_error(a, "--%s given more than once", fl->name);
            break;
        }
        a->occ[a->nocc].flag = f;
        a->occ[a->nocc].value = value;
        a->nocc++;
    }
    if (rc)
        cli_args_free(a);
    return rc;
}

void cli_args_free(cli_args *a)
{
    free(a->occ);
    free(a->pos);
    for (int i = 0; i < a->nlists; i++)
        free(a->lists[i]);
    free(a->lists);
    a->occ = NULL;
    a->pos = NULL;
    a->lists = NULL;
    a->nocc = a->npos = a->nlists = 0;
}

int cli_count(const cli_args *a, const char *name)
{
    int n = 0;
    for (int i = 0; i < a->nocc; i++)
        n += !strcmp(a->flags[a->occ[i].flag].name, name);
    return n;
}

const char *cli_get_str(const cli_args *a, const char *name, const char *def)
{
    for (int i = a->nocc - 1; i >= 0; i--)
        if (!strcmp(a->flags[a->occ[i].flag].name, name))
            return a->occ[i].value;
    return def;
}

int cli_require_str(const cli_args *a, const char *name, const char **out)
{
    const char *v = cli_get_str(a, name, NULL);
    if (!v)
        return cli_usage_error(a, "--%s is required (see '%s --help')", name, a->prog);
    *out = v;
    return 0;
}

static int range_error(const cli_args *a, const char *name, const char *kind, double min,
                       double max, int is_int, const char *text)
{
    char range[96];
    int lo = is_int ? min > (double)LONG_MIN : min > -HUGE_VAL;
    int hi = is_int ? max < (double)LONG_MAX : max < HUGE_VAL;
    if (lo && hi)
        snprintf(range, sizeof range, " in [%.15g, %.15g]", min, max);
    else if (lo)
        snprintf(range, sizeof range, " >= %.15g", min);
    else if (hi)
        snprintf(range, sizeof range, " <= %.15g", max);
    else
        range[0] = 0;
    return cli_usage_error(a, "--%s must be %s%s, got '%s'", name, kind, range, text);
}

int cli_parse_long(const cli_args *a, const char *name, const char *text, long min, long max,
                   long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != 0 || errno == ERANGE || v < min || v > max || text[0] == ' ')
        return range_error(a, name, "an integer", (double)min, (double)max, 1, text);
    *out = v;
    return 0;
}

int cli_get_long(const cli_args *a, const char *name, long def, long min, long max, long *out)
{
    const char *v = cli_get_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    return cli_parse_long(a, name, v, min, max, out);
}

int cli_get_int(const cli_args *a, const char *name, int def, int min, int max, int *out)
{
    long v;
    int rc = cli_get_long(a, name, def, min, max, &v);
    if (!rc)
        *out = (int)v;
    return rc;
}

int cli_get_double(const cli_args *a, const char *name, double def, double min, double max,
                   double *out)
{
    const char *v = cli_get_str(a, name, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end != 0 || errno == ERANGE || !isfinite(d) || d < min || d > max ||
        v[0] == ' ')
        return range_error(a, name, "a number", min, max, 0, v);
    *out = d;
    return 0;
}

int cli_get_list(cli_args *a, const char *name, const char ***items, int *n)
{
    *n = 0;
    *items = NULL;
    size_t total = 0;
    int count = 0;
    for (int i = 0; i < a->nocc; i++)
        if (!strcmp(a->flags[a->occ[i].flag].name, name) && a->occ[i].value) {
            total += strlen(a->occ[i].value) + 1;
            count++;
            for (const char *p = a->occ[i].value; *p; p++)
                count += *p == ',';
        }
    if (count == 0)
        return 0;
    /* one block: the pointer array followed by the split copies */
    size_t ptr_bytes = sizeof(char *) * (size_t)count;
    char **lists = realloc(a->lists, sizeof(char *) * (size_t)(a->nlists + 1));
    if (!lists)
        return 1;
    a->lists = lists;
    char *block = malloc(ptr_bytes + total);
    if (!block)
        return 1;
    a->lists[a->nlists++] = block;
    const char **out = (const char **)(void *)block;
    char *text = block + ptr_bytes;
    int k = 0;
    for (int i = 0; i < a->nocc; i++) {
        if (strcmp(a->flags[a->occ[i].flag].name, name) || !a->occ[i].value)
            continue;
        size_t len = strlen(a->occ[i].value);
        memcpy(text, a->occ[i].value, len + 1);
        for (char *tok = text, *p = text;; p++) {
            if (*p == ',' || *p == 0) {
                int last = *p == 0;
                *p = 0;
                if (*tok)
                    out[k++] = tok;
                tok = p + 1;
                if (last)
                    break;
            }
        }
        text += len + 1;
    }
    *items = out;
    *n = k;
    return 0;
}

void cli_print_flags(FILE *f, const cli_flag *flags, int nflags)
{
    int width = 0;
    for (int i = 0; i < nflags; i++) {
        int w = (int)strlen(flags[i].name) + 2;
        if (flags[i].kind & CLI_VALUE)
            w += 1 + (int)strlen(flags[i].metavar ? flags[i].metavar : "VALUE");
        if (w > width)
            width = w;
    }
    for (int i = 0; i < nflags; i++) {
        char left[128];
        if (flags[i].kind & CLI_VALUE)
            snprintf(left, sizeof left, "--%s %s", flags[i].name,
                     flags[i].metavar ? flags[i].metavar : "VALUE");
        else
            snprintf(left, sizeof left, "--%s", flags[i].name);
        fprintf(f, "  %-*s  %s\n", width, left, flags[i].help);
    }
    fprintf(f, "  %-*s  %s\n", width, "--help", "show this help");
}
