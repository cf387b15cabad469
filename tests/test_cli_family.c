/* The optimizer family in `muon train` and `muon compare`: --optim NAME for
 * every algorithm, the family's flags and their bad values, the
 * configuration's JSON (checkpoints) with the new keys and without them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "harness.h"
#include "testutil.h"
#include "train/train.h"

#define TINY "--layers 1 --dim 16 --heads 2 --context 16 --batch 4 --quiet --threads 1"

static const char *corpus(void)
{
    static char path[256];
    if (!path[0]) {
        size_t len;
        char *t = exp_corpus(20000, 3, &len);
        snprintf(path, sizeof path, "%s/corpus.txt", tu_tmpdir());
        tu_write_file(path, t, len);
        free(t);
    }
    return path;
}

static int train(const char *args, char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/muon train --data %s --out %s/run " TINY " %s 2>&1",
             tu_build_dir(), corpus(), tu_tmpdir(), args);
    return tu_run(cmd, out);
}

TEST(cli_family_every_optim_trains)
{
    for (int a = 0; a < MUON_ALGO_COUNT; a++) {
        char args[256], *out = NULL;
        snprintf(args, sizeof args, "--steps 6 --optim %s --fanion-k 4 --wsd-decay xmodel",
                 muon_algo_name((muon_algo)a));
        int rc = train(args, &out);
        if (rc != 0 || !out || !strstr(out, "done: 6 steps")) {
            mt_fail(__FILE__, __LINE__, "--optim %s: exit %d: %s", muon_algo_name((muon_algo)a),
                    rc, out ? out : "");
            free(out);
            return;
        }
        free(out);
    }
}

TEST(cli_family_bad_flags)
{
    const char *bad[][2] = {
        {"--optim lion", "--optim must be muon, adamw, sgdm"},
        {"--scale big", "--scale must be"},
        {"--nesterov --no-nesterov", "contradict"},
        {"--spectrum-power 9", "spectrum-power"},
        {"--fanion-k 0", "fanion-k"},
        {"--fanion-alpha 1.5", "fanion-alpha"},
        {"--wsd-decay cosine", "--wsd-decay must be linear or xmodel"},
        {"--adam-weight-decay -1", "adam-weight-decay"},
        {"--optim adamw-muon --schedule cosine", "needs --schedule wsd"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *out = NULL;
        int rc = train(bad[k][0], &out);
        int named = out && strstr(out, bad[k][1]);
        if (rc != 2 || !named) {
            mt_fail(__FILE__, __LINE__, "%s: exit %d, output: %s", bad[k][0], rc, out ? out : "");
            free(out);
            return;
        }
        free(out);
    }
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s/muon compare --data %s --out %s/cmp --preset adam 2>&1",
             tu_build_dir(), corpus(), tu_tmpdir());
    ASSERT_EQ_INT(tu_run(cmd, &out), 2);
    ASSERT(out && strstr(out, "--preset must be default or moonlight"));
    free(out);
}

/* The family's options survive the configuration's JSON; a configuration
 * written before them reads back with the defaults, one weight decay for
 * both groups. */
TEST(cli_family_config_json)
{
    train_config c = train_config_default();
    snprintf(c.data, sizeof c.data, "x.txt");
    c.optim = MUON_ALGO_FANION_K;
    c.scale = MUON_SCALE_SPECTRAL;
    c.nesterov = 0;
    c.weight_decay = 0.1;
    c.adam_weight_decay = 0.02;
    c.spectrum_power = 0.5;
    c.fanion_alpha = 0.3;
    c.sign_scale = 0.2;
    c.fanion_k = 7;
    c.decay_shape = MUON_DECAY_XMODEL;
    char *json = train_config_to_json(&c);
    train_config b;
    char err[256];
    ASSERT(train_config_from_json(json, strlen(json), &b, err, sizeof err) == 0);
    free(json);
    ASSERT_EQ_INT(b.optim, MUON_ALGO_FANION_K);
    ASSERT_EQ_INT(b.scale, MUON_SCALE_SPECTRAL);
    ASSERT_EQ_INT(b.nesterov, 0);
    ASSERT_NEAR(b.adam_weight_decay, 0.02, 0);
    ASSERT_NEAR(b.spectrum_power, 0.5, 0);
    ASSERT_NEAR(b.fanion_alpha, 0.3, 0);
    ASSERT_NEAR(b.sign_scale, 0.2, 0);
    ASSERT_EQ_INT(b.fanion_k, 7);
    ASSERT_EQ_INT(b.decay_shape, MUON_DECAY_XMODEL);
    /* an older configuration: no family keys */
    c = train_config_default();
    c.weight_decay = 0.05;
    json = train_config_to_json(&c);
    const char *keys[] = {"\"adam_weight_decay\"", "\"scale\"", "\"nesterov\"",
                          "\"spectrum_power\"", "\"fanion_alpha\"", "\"sign_scale\"",
                          "\"fanion_k\"", "\"wsd_decay\""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char *p = strstr(json, keys[k]);
        ASSERT(p != NULL);
        memcpy(p + 1, "zz", 2); /* an unknown key is ignored */
    }
    ASSERT(train_config_from_json(json, strlen(json), &b, err, sizeof err) == 0);
    free(json);
    ASSERT_NEAR(b.adam_weight_decay, 0.05, 0);
    ASSERT_EQ_INT(b.scale, MUON_SCALE_MOONLIGHT);
    ASSERT_EQ_INT(b.nesterov, 1);
    ASSERT_EQ_INT(b.fanion_k, 16);
    ASSERT_EQ_INT(b.decay_shape, MUON_DECAY_LINEAR);
}

/* --preset moonlight: decay 0.1 on both groups, stated in the report. */
TEST(cli_family_compare_moonlight_preset)
{
    char cmd[2048], dir[256], *out = NULL;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(cmd, sizeof cmd,
             "%s/muon compare --data %s --out %s/cmp " TINY " --steps 8 --sweep-steps 2 "
             "--lr-grid 0.004,0.016 --preset moonlight 2>&1",
             tu_build_dir(), corpus(), dir);
    int rc = tu_run(cmd, &out);
    if (rc != 0) {
        mt_fail(__FILE__, __LINE__, "compare --preset moonlight: exit %d: %s", rc, out ? out : "");
        free(out);
        return;
    }
    free(out);
    snprintf(cmd, sizeof cmd, "%s/cmp/report.md", dir);
    size_t len;
    char *md = tu_read_file(cmd, &len);
    int stated = md && strstr(md, "weight decay 0.1 on Muon's matrices and 0.1 on the AdamW "
                                  "group (AdamW alone: 0.1)");
    if (!stated)
        mt_fail(__FILE__, __LINE__, "report.md does not state the decay: %.600s", md ? md : "");
    free(md);
}
