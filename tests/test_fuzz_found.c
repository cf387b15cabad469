/* Inputs the fuzz targets (tests/fuzz) found that a parser mishandled, one
 * case each, reduced to the part that matters, so the normal suite keeps
 * them fixed without clang. docs/reliability.md lists them. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/train.h"

/* The default configuration's JSON with one field's value replaced. */
static char *config_json_with(const char *key, const char *value)
{
    train_config c = train_config_default();
    snprintf(c.data, sizeof c.data, "data.txt");
    char *j = train_config_to_json(&c), pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *at = j ? strstr(j, pat) : NULL;
    if (!at) {
        free(j);
        return NULL;
    }
    at += strlen(pat);
    size_t old = strcspn(at, ",}");
    char *out = malloc(strlen(j) + strlen(value) + 1);
    if (out)
        sprintf(out, "%.*s%s%s", (int)(at - j), j, value, at + old);
    free(j);
    return out;
}

/* fuzz_config: a "warmup" of 8.9e85 went through a conversion to long,
 * which is undefined for a value out of range; integer fields out of the
 * int range, fractional or non-finite now make the configuration invalid. */
TEST(fuzz_config_rejects_numbers_that_do_not_fit)
{
    static const char *const cases[][2] = {
        {"warmup", "8.8888888e85"}, {"steps", "1e30"},   {"layers", "-3e12"},
        {"dim", "128.5"},           {"eval_every", "4294967296"}, {"lr", "1e999"},
    };
    train_config c;
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *j = config_json_with(cases[i][0], cases[i][1]);
        ASSERT(j != NULL);
        int rc = train_config_from_json(j, strlen(j), &c, err, sizeof err);
        free(j);
        if (rc != -1)
            mt_fail(__FILE__, __LINE__, "\"%s\": %s was accepted", cases[i][0], cases[i][1]);
        ASSERT_EQ_INT(rc, -1);
        ASSERT(strstr(err, cases[i][0]) != NULL);
    }
    /* the largest values that fit still read */
    char *j = config_json_with("steps", "2147483647");
    ASSERT(j != NULL);
    ASSERT_EQ_INT(train_config_from_json(j, strlen(j), &c, err, sizeof err), 0);
    free(j);
    ASSERT_EQ_INT(c.steps, 2147483647L);
}
