/* docs/cli.md against the code: every flag that `muon SUB --help` prints,
 * for every subcommand `muon --help` lists and every benchmark `muon bench
 * --help` lists, must have a row in the table of the section "## `muon SUB`"
 * of docs/cli.md, with the default the help states; and every row of such a
 * table must name a flag the help prints. Nothing here knows a flag: the
 * lists come from the help texts, so a new flag or subcommand is checked as
 * soon as it exists.
 *
 * A flag's default is the help's text after "default" (and an optional
 * colon) up to ')' or ';'. It matches a docs cell holding the same words and
 * numbers in the same order (numbers by value, so 4e-3 is 0.004; case,
 * backticks and punctuation aside). A flag whose help states no default
 * must say "required", and so must its docs row; switches need only a row.
 * A section saying "every flag of `muon X`" lends X's rows to the flags it
 * does not list itself. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define MAX_TOKENS 64
#define MAX_NAMES 32
#define MAX_FLAGS 256

typedef struct {
    int is_num;
    double num;
    char word[48];
} token;

/* Words ("polar-express", "--lr", "openblas's") and numbers; the rest,
 * backticks and punctuation included, separates them. */
static int tokenize(const char *s, size_t len, token *out, int cap)
{
    int n = 0;
    size_t i = 0;
    while (i < len && n < cap) {
        const char *p = s + i;
        if (isdigit((unsigned char)*p)) {
            char *end;
            out[n].is_num = 1;
            out[n].num = strtod(p, &end);
            /* "3..25" is two numbers, not 3. and .25 */
            if (end > p && end[-1] == '.')
                end--;
            i += (size_t)(end - p);
            n++;
        } else if (isalpha((unsigned char)*p) ||
                   (p[0] == '-' && i + 2 < len && p[1] == '-' && isalpha((unsigned char)p[2]))) {
            size_t k = 0;
            while (i < len && k + 1 < sizeof out[n].word &&
                   (isalnum((unsigned char)s[i]) || strchr("_'-", s[i])))
                out[n].word[k++] = (char)tolower((unsigned char)s[i++]);
            out[n].word[k] = 0;
            out[n++].is_num = 0;
        } else {
            i++;
        }
    }
    return n;
}

static int same_token(const token *a, const token *b)
{
    if (a->is_num != b->is_num)
        return 0;
    return a->is_num ? a->num == b->num : strcmp(a->word, b->word) == 0;
}

/* 1 if the tokens of want appear in order, next to each other, in cell. */
static int default_matches(const char *want, size_t want_len, const char *cell, size_t cell_len)
{
    token w[MAX_TOKENS], c[MAX_TOKENS];
    int nw = tokenize(want, want_len, w, MAX_TOKENS), nc = tokenize(cell, cell_len, c, MAX_TOKENS);
    if (nw == 0)
        return 0;
    for (int start = 0; start + nw <= nc; start++) {
        int k = 0;
        while (k < nw && same_token(&w[k], &c[start + k]))
            k++;
        if (k == nw)
            return 1;
    }
    return 0;
}

/* The names listed under `heading` ("commands:") in a --help text: the
 * first word of each indented line up to a blank line. */
static int listed_names(const char *text, const char *heading, char names[][32], int cap)
{
    const char *p = strstr(text, heading);
    int n = 0;
    if (!p)
        return 0;
    p = strchr(p, '\n');
    while (p && p[1] == ' ' && n < cap) {
        p++;
        while (*p == ' ')
            p++;
        size_t k = strcspn(p, " \n");
        snprintf(names[n++], 32, "%.*s", (int)(k < 31 ? k : 31), p);
        p = strchr(p, '\n');
    }
    return n;
}

/* The section "## `muon SUB`" of the docs: [*start, *end). */
static int find_section(const char *docs, const char *sub, const char **start, const char **end)
{
    char heading[96];
    snprintf(heading, sizeof heading, "\n## `muon %s`\n", sub);
    const char *s = strstr(docs, heading);
    if (!s)
        return 0;
    *start = s + 1;
    const char *e = strstr(s + 1, "\n## ");
    *end = e ? e : s + strlen(s);
    return 1;
}

/* The table row for --flag in [start, end), or NULL; *len gets its length. */
static const char *find_row(const char *start, const char *end, const char *flag, size_t *len)
{
    char key[80];
    snprintf(key, sizeof key, "\n| `--%s", flag);
    size_t kl = strlen(key);
    for (const char *p = start; (p = strstr(p, key)) && p < end; p++) {
        char after = p[kl];
        if (after == ' ' || after == '`' || after == '=') {
            const char *nl = strchr(p + 1, '\n');
            *len = nl ? (size_t)(nl - p - 1) : strlen(p + 1);
            return p + 1;
        }
    }
    return NULL;
}

/* The last cell of a markdown table row ("\|" does not end a cell). */
static const char *last_cell(const char *row, size_t len, size_t *cell_len)
{
    const char *stop = row + len, *q = stop;
    while (q > row && q[-1] != '|')
        q--; /* q: after the closing '|' */
    const char *e = q > row ? q - 1 : row, *b = e;
    while (b > row && !(b[-1] == '|' && (b - 1 == row || b[-2] != '\\')))
        b--;
    *cell_len = (size_t)(e - b);
    return b;
}

/* The row for flag in SUB's section, or in the section it lends from. */
static const char *docs_row(const char *docs, const char *sub, const char *flag, size_t *len)
{
    const char *s, *e;
    if (!find_section(docs, sub, &s, &e))
        return NULL;
    const char *row = find_row(s, e, flag, len);
    const char *lend = strstr(s, "every flag of `muon ");
    if (!row && lend && lend < e) {
        char other[32];
        lend += strlen("every flag of `muon ");
        snprintf(other, sizeof other, "%.*s", (int)strcspn(lend, "`"), lend);
        if (strcmp(other, sub) != 0)
            return docs_row(docs, other, flag, len);
    }
    return row;
}

static int row_says(const char *row, size_t len, const char *word)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%.*s", (int)len, row);
    return strstr(copy, word) != NULL;
}

/* Check one subcommand's help against the docs; returns the problems found
 * (each reported through mt_fail). */
static int check_subcommand(const char *docs, const char *sub)
{
    char cmd[256], *help = NULL;
    snprintf(cmd, sizeof cmd, "'%s/muon' %s --help", tu_build_dir(), sub);
    int problems = 0, flags = 0;
    if (tu_run(cmd, &help) != 0) {
        mt_fail(__FILE__, __LINE__, "muon %s --help failed", sub);
        free(help);
        return 1;
    }
    char seen[MAX_FLAGS][48];
    for (const char *line = help; line && *line; line = strchr(line, '\n'), line += !!line) {
        if (strncmp(line, "  --", 4) != 0)
            continue;
        size_t eol = strcspn(line, "\n"), nl = strcspn(line + 4, " \n");
        char flag[48];
        snprintf(flag, sizeof flag, "%.*s", (int)(nl < 47 ? nl : 47), line + 4);
        if (!strcmp(flag, "help"))
            continue;
        if (flags < MAX_FLAGS)
            snprintf(seen[flags++], sizeof seen[0], "%s", flag);
        /* "--name METAVAR  help": a value flag has a metavar before the gap */
        const char *gap = strstr(line + 4, "  ");
        if (!gap || gap > line + eol)
            continue;
        int takes_value = gap > line + 4 + nl;
        const char *text = gap;
        while (*text == ' ')
            text++;
        size_t text_len = (size_t)(line + eol - text);
        char text_copy[512];
        snprintf(text_copy, sizeof text_copy, "%.*s", (int)text_len, text);
        size_t row_len, cell_len;
        const char *row = docs_row(docs, sub, flag, &row_len);
        if (!row) {
            mt_fail(__FILE__, __LINE__, "docs/cli.md: no row for --%s in the section of muon %s",
                    flag, sub);
            problems++;
            continue;
        }
        const char *cell = last_cell(row, row_len, &cell_len);
        const char *d = strstr(text_copy, "default");
        if (d) {
            d += strlen("default");
            while (*d == ':' || *d == ' ')
                d++;
            size_t dl = strcspn(d, ");");
            if (!default_matches(d, dl, cell, cell_len)) {
                mt_fail(__FILE__, __LINE__,
                        "muon %s --%s: --help says default '%.*s', docs/cli.md says '%.*s'",
                        sub, flag, (int)dl, d, (int)cell_len, cell);
                problems++;
            }
        } else if (takes_value && (!strstr(text_copy, "required") ||
                                   !row_says(row, row_len, "required"))) {
            mt_fail(__FILE__, __LINE__,
                    "muon %s --%s: --help must state a default or 'required' (and the docs "
                    "row too): '%s'", sub, flag, text_copy);
            problems++;
        }
    }
    /* and no row for a flag the command does not have */
    const char *s, *e;
    if (flags && !find_section(docs, sub, &s, &e)) {
        mt_fail(__FILE__, __LINE__, "docs/cli.md has no section \"## `muon %s`\"", sub);
        problems++;
    } else if (flags) {
        for (const char *p = s; (p = strstr(p, "\n| `--")) && p < e; p++) {
            char flag[48];
            size_t k = strcspn(p + 6, " `=\n");
            snprintf(flag, sizeof flag, "%.*s", (int)(k < 47 ? k : 47), p + 6);
            int known = 0;
            for (int i = 0; i < flags && !known; i++)
                known = !strcmp(seen[i], flag);
            if (!known) {
                mt_fail(__FILE__, __LINE__, "docs/cli.md lists --%s for muon %s, which has no "
                        "such flag", flag, sub);
                problems++;
            }
        }
    }
    free(help);
    return problems;
}

static char *read_docs(void)
{
    size_t len;
    return tu_read_file("docs/cli.md", &len);
}

TEST(cli_docs_list_every_flag_with_its_default)
{
    char cmd[256], *top = NULL, *bench = NULL, *docs = read_docs();
    ASSERT(docs != NULL);
    snprintf(cmd, sizeof cmd, "'%s/muon' --help", tu_build_dir());
    ASSERT_EQ_INT(tu_run(cmd, &top), 0);
    snprintf(cmd, sizeof cmd, "'%s/muon' bench --help", tu_build_dir());
    ASSERT_EQ_INT(tu_run(cmd, &bench), 0);
    char names[MAX_NAMES][32], benches[MAX_NAMES][32];
    int n = listed_names(top, "commands:", names, MAX_NAMES);
    int nb = listed_names(bench, "benchmarks:", benches, MAX_NAMES);
    free(top);
    free(bench);
    ASSERT(n >= 6 && nb >= 6);
    int problems = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], "help") || !strcmp(names[i], "version"))
            continue;
        if (!strcmp(names[i], "bench")) {
            for (int j = 0; j < nb; j++) {
                char sub[96];
                snprintf(sub, sizeof sub, "bench %.31s", benches[j]);
                problems += check_subcommand(docs, sub);
            }
            continue;
        }
        problems += check_subcommand(docs, names[i]);
    }
    free(docs);
    ASSERT_EQ_INT(problems, 0);
}

/* The comparison itself: the same default written differently matches, a
 * different one does not. */
TEST(cli_docs_default_comparison)
{
    static const struct {
        const char *help, *docs;
        int match;
    } cases[] = {
        {"0.016 muon, 0.004 adamw", "0.016 (`muon`), 0.004 (`adamw`)", 1},
        {"0.016 muon, 0.004 adamw", "4e-3", 0},
        {"0.004", "4e-3", 1},
        {"0.002,0.004,0.008,0.016,0.032", "`0.001,0.002,0.004,0.008,0.016`", 0},
        {"adaptive, 3..25", "adaptive, 3..25 calls", 1},
        {"polar-express", "`polar-express`", 1},
        {"polar-express", "`keller`", 0},
        {"--lr", "`--lr` (given or default)", 1},
        {"20, capped at steps/5", "20", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (default_matches(cases[i].help, strlen(cases[i].help), cases[i].docs,
                            strlen(cases[i].docs)) != cases[i].match)
            mt_fail(__FILE__, __LINE__, "'%s' vs '%s': expected %s", cases[i].help,
                    cases[i].docs, cases[i].match ? "a match" : "no match");
    size_t cl;
    const char *row = "| `--auto X` | `auto\\|yes\\|no` | `yes` |";
    const char *cell = last_cell(row, strlen(row), &cl);
    ASSERT(default_matches("yes", 3, cell, cl));
    row = "| `--x` | a | `auto\\|no` |";
    cell = last_cell(row, strlen(row), &cl);
    ASSERT(default_matches("auto", 4, cell, cl));
}
