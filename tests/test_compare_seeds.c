/* muon compare's final runs, one per seed: each seed's speedup recomputed
 * here from that seed's two metrics.jsonl files (Muon's steps to AdamW's
 * final validation loss, interpolated linearly between evaluations, as
 * docs/cli.md defines it), and the reported speedup their mean. The files
 * print losses to 6 decimals (a rounding of 5e-7 in each of the target and
 * the two losses the crossing interpolates between), so the recomputation
 * may differ by the effect of moving the target by 3 x 1e-6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "harness.h"
#include "testutil.h"

/* (step, val_loss) of the evaluation lines of dir/metrics.jsonl */
static int val_curve(const char *dir, long *steps, double *loss, int cap)
{
    char p[900];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    char *t = tu_read_file(p, NULL);
    int n = 0;
    for (char *line = t; line && *line && n < cap;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step"),
                    *v = cJSON_GetObjectItemCaseSensitive(o, "val_loss");
        if (cJSON_IsNumber(s) && cJSON_IsNumber(v)) {
            steps[n] = (long)s->valuedouble;
            loss[n++] = v->valuedouble;
        }
        cJSON_Delete(o);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(t);
    return n;
}

static double reach(const long *s, const double *l, int n, double target)
{
    for (int i = 0; i < n; i++)
        if (l[i] <= target)
            return i == 0 ? (double)s[0]
                          : (double)s[i - 1] + (l[i - 1] - target) / (l[i - 1] - l[i]) *
                                                   (double)(s[i] - s[i - 1]);
    return -1;
}

TEST(compare_speedup_per_seed_and_its_mean)
{
    char exe[600];
    struct stat st;
    snprintf(exe, sizeof exe, "%s/muon", tu_build_dir());
    if (stat(exe, &st) != 0)
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    char p[700], cmd[2048];
    snprintf(p, sizeof p, "%s/text.txt", d);
    static const char line[] = "seeds differ in their start and order, not in their rule.\n";
    char corpus[100 * sizeof line];
    for (int i = 0; i < 100; i++)
        memcpy(corpus + i * (sizeof line - 1), line, sizeof line - 1);
    ASSERT(tu_write_file(p, corpus, 100 * (sizeof line - 1)) == 0);
    snprintf(cmd, sizeof cmd,
             "'%s' compare --data '%s' --out '%s/cmp' --layers 1 --dim 16 --heads 2 --context 16 "
             "--batch 4 --steps 24 --sweep-steps 4 --lr-grid 0.004,0.016,0.064 --eval-every 4 "
             "--seeds 3 --quiet --threads 1 --seed 5",
             exe, p, d);
    char *out = NULL;
    int rc = tu_run(cmd, &out);
    if (rc)
        printf("    %s", out ? out : "");
    free(out);
    ASSERT_EQ_INT(rc, 0);
    snprintf(p, sizeof p, "%s/cmp/summary.json", d);
    char *js = tu_read_file(p, NULL);
    cJSON *root = cJSON_Parse(js);
    free(js);
    ASSERT(root);
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(root, "speedup_per_seed");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(root, "speedup");
    ASSERT(cJSON_GetArraySize(per) == 3 && cJSON_IsNumber(mean));
    double sum = 0;
    for (int k = 0; k < 3; k++) {
        char aw[800], mu[800];
        if (k == 0) {
            snprintf(aw, sizeof aw, "%s/cmp/adamw", d);
            snprintf(mu, sizeof mu, "%s/cmp/muon", d);
        } else {
            snprintf(aw, sizeof aw, "%s/cmp/adamw-seed%d", d, 5 + k);
            snprintf(mu, sizeof mu, "%s/cmp/muon-seed%d", d, 5 + k);
        }
        long sa[64], sm[64];
        double la[64], lm[64];
        int na = val_curve(aw, sa, la, 64), nm = val_curve(mu, sm, lm, 64);
        ASSERT(na >= 2 && nm >= 2);
        double want, tol;
        double ms = reach(sm, lm, nm, la[na - 1]);
        if (ms > 0) {
            want = 24.0 / ms;
            double m1 = reach(sm, lm, nm, la[na - 1] + 3e-6), m2 = reach(sm, lm, nm, la[na - 1] - 3e-6);
            tol = fabs(24.0 / m1 - 24.0 / (m2 > 0 ? m2 : m1)) + 1e-12;
        } else {
            want = reach(sa, la, na, lm[nm - 1]) / 24.0;
            tol = fabs(reach(sa, la, na, lm[nm - 1] + 3e-6) - reach(sa, la, na, lm[nm - 1] - 3e-6)) /
                      24.0 + 1e-12;
        }
        const cJSON *got = cJSON_GetArrayItem(per, k);
        ASSERT(cJSON_IsNumber(got));
        printf("    seed %d: speedup %.4f (recomputed %.4f)\n", 5 + k, got->valuedouble, want);
        ASSERT_NEAR(got->valuedouble, want, tol);
        sum += got->valuedouble;
    }
    ASSERT_NEAR(mean->valuedouble, sum / 3, 1e-12 * fabs(sum));
    cJSON_Delete(root);
}
