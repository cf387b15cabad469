/* `muon exp NAME --quick` for every experiment (what make test runs of
 * them): each writes results.json with its keys, README.md with the exact
 * command, and an SVG plot; lsq and mf in the shapes the issue fixes; bad
 * names and flags are usage errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "exp/exp.h"
#include "harness.h"
#include "testutil.h"

static int run_exp(const char *name, const char *dir, char **out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/muon exp %s --quick --out %s/%s --threads 2 2>&1",
             tu_build_dir(), name, dir, name);
    return tu_run(cmd, out);
}

static cJSON *read_json(const char *path)
{
    size_t len;
    char *text = tu_read_file(path, &len);
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    return j;
}

/* results.json, README.md with the command, and at least one SVG. */
static void check_outputs(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/results.json", dir, name);
    cJSON *j = read_json(path);
    ASSERT(j != NULL);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "experiment");
    ASSERT(cJSON_IsString(e) && !strcmp(e->valuestring, name));
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "machine")));
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "seeds")));
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/%s/README.md", dir, name);
    size_t len;
    char *md = tu_read_file(path, &len);
    ASSERT(md != NULL);
    char want[128];
    snprintf(want, sizeof want, "Command: `muon exp %s --quick", name);
    int has_cmd = strstr(md, want) != NULL, has_svg = strstr(md, ".svg)") != NULL;
    int has_table = strstr(md, "|---") != NULL;
    char svg[256] = "";
    const char *p = strstr(md, "](");
    if (p)
        sscanf(p + 2, "%255[^)]", svg);
    free(md);
    ASSERT(has_cmd && has_svg && has_table);
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, svg);
    char *s = tu_read_file(path, &len);
    int ok = s && strstr(s, "<svg") != NULL;
    free(s);
    ASSERT(ok);
}

TEST(exp_every_experiment_quick)
{
    const char *dir = tu_tmpdir();
    for (int i = 0; i < exp_count; i++) {
        char *out = NULL;
        int rc = run_exp(exp_table[i].name, dir, &out);
        if (rc != 0) {
            mt_fail(__FILE__, __LINE__, "muon exp %s --quick: exit %d: %s", exp_table[i].name,
                    rc, out ? out : "");
            free(out);
            return;
        }
        free(out);
        check_outputs(dir, exp_table[i].name);
    }
    /* the shapes the issue fixes */
    char path[512];
    snprintf(path, sizeof path, "%s/lsq/results.json", dir);
    cJSON *j = read_json(path);
    ASSERT(j != NULL);
    const char *opts[] = {"muon", "fmuon", "smuon", "nsgd", "signsgd"};
    for (int k = 0; k < 5; k++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, opts[k]);
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "iterations");
        ASSERT(cJSON_IsNumber(it) || cJSON_IsNull(it));
        ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "lr")));
        ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "momentum")));
    }
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/mf/results.json", dir);
    j = read_json(path);
    ASSERT(j != NULL);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "kappa"));
    ASSERT_EQ_INT(n, 4);
    const char *keys[] = {"gd", "adam", "muon"};
    for (int k = 0; k < 3; k++)
        ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, keys[k])), n);
    /* Muon reaches the target at every condition number even in the quick run */
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "muon");
    for (int k = 0; k < n; k++)
        ASSERT(cJSON_IsNumber(cJSON_GetArrayItem(m, k)));
    cJSON_Delete(j);
}

TEST(exp_bad_usage)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s/muon exp nonsense --quick 2>&1", tu_build_dir());
    ASSERT_EQ_INT(tu_run(cmd, &out), 2);
    ASSERT(out && strstr(out, "unknown experiment 'nonsense'"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s/muon exp mf --seeds 0 --quick 2>&1", tu_build_dir());
    ASSERT_EQ_INT(tu_run(cmd, NULL), 2);
    snprintf(cmd, sizeof cmd, "%s/muon exp list", tu_build_dir());
    out = NULL;
    ASSERT_EQ_INT(tu_run(cmd, &out), 0);
    ASSERT(out && strstr(out, "efficiency") && strstr(out, "ns-steps"));
    free(out);
}

/* The built-in corpus is deterministic, of the size asked, printable. */
TEST(exp_corpus_deterministic)
{
    size_t a, b;
    char *x = exp_corpus(5000, 42, &a), *y = exp_corpus(5000, 42, &b);
    ASSERT(x && y);
    ASSERT_EQ_INT(a, b);
    ASSERT(a <= 5000 && a > 4900);
    int same = memcmp(x, y, a) == 0, printable = 1;
    for (size_t i = 0; i < a; i++)
        printable &= (x[i] >= 'a' && x[i] <= 'z') || (x[i] >= 'A' && x[i] <= 'Z') ||
                     x[i] == ' ' || x[i] == '.' || x[i] == '\n';
    free(x);
    free(y);
    ASSERT(same && printable);
}
