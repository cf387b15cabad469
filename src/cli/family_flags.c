/* Reading the optimizer family's flags (cli/family_flags.h). */
#include "cli/family_flags.h"

#include <string.h>

#include "cli/cli.h"

int cli_family_flags_read(const cli_args *a, train_config *c)
{
    const char *s;
    int rc;
    if ((s = cli_get_str(a, "scale", NULL)) && muon_scale_parse(s, &c->scale))
        return cli_usage_error(a, "--scale must be moonlight, keller, spectral or none, got '%s'",
                               s);
    if (cli_count(a, "nesterov") && cli_count(a, "no-nesterov"))
        return cli_usage_error(a, "--nesterov and --no-nesterov contradict each other");
    if (cli_count(a, "nesterov"))
        c->nesterov = 1;
    if (cli_count(a, "no-nesterov"))
        c->nesterov = 0;
    double awd = cli_count(a, "weight-decay") ? c->weight_decay : c->adam_weight_decay;
    if ((rc = cli_get_double(a, "adam-weight-decay", awd, 0, 10, &c->adam_weight_decay)) ||
        (rc = cli_get_double(a, "spectrum-power", c->spectrum_power, 0, 8, &c->spectrum_power)) ||
        (rc = cli_get_int(a, "fanion-k", c->fanion_k, 1, 1 << 20, &c->fanion_k)) ||
        (rc = cli_get_double(a, "fanion-alpha", c->fanion_alpha, 0, 1, &c->fanion_alpha)) ||
        (rc = cli_get_double(a, "sign-scale", c->sign_scale, 0, 100, &c->sign_scale)))
        return rc;
    if ((s = cli_get_str(a, "wsd-decay", NULL)) && muon_decay_shape_parse(s, &c->decay_shape))
        return cli_usage_error(a, "--wsd-decay must be linear or xmodel, got '%s'", s);
    return 0;
}

int cli_compare_preset(const cli_args *a, train_config *c)
{
    const char *s = cli_get_str(a, "preset", "default");
    if (!strcmp(s, "default"))
        return 0;
    if (strcmp(s, "moonlight"))
        return cli_usage_error(a, "--preset must be default or moonlight, got '%s'", s);
    if (!cli_count(a, "weight-decay"))
        c->weight_decay = 0.1;
    if (!cli_count(a, "adam-weight-decay"))
        c->adam_weight_decay = c->weight_decay;
    if (!cli_count(a, "momentum"))
        c->momentum = 0.95;
    c->scale = MUON_SCALE_MOONLIGHT;
    c->nesterov = 1;
    return 0;
}
