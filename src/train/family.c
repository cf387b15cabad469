/* The optimizer family in the trainer: default rates, the library
 * configuration of a run, and the JSON keys of the family's options. */
#include "train/family.h"

#include <string.h>

double train_default_lr(muon_algo a)
{
    /* adamw and the muon hybrid: the best rates of `muon compare`'s sweep at
     * the default model; the other rules take the rate of the rule whose
     * update RMS they share (SCALE's rows of RMS 1 like AdamW's, the
     * orthogonalizing rules like Muon's); SGD's update is the raw gradient,
     * so its rate is of another order (docs/cli.md). */
    switch (a) {
    case MUON_ALGO_ADAMW:
    case MUON_ALGO_SCALE:
        return TRAIN_DEFAULT_ADAMW_LR;
    case MUON_ALGO_SGDM:
        return 0.1;
    default:
        return TRAIN_DEFAULT_MUON_LR;
    }
}

muon_opt_config train_opt_config(const train_config *c)
{
    muon_opt_config oc = muon_opt_config_default();
    oc.algo = c->optim;
    oc.lr = c->lr;
    oc.adam_lr = c->optim == MUON_ALGO_ADAMW ? c->lr : c->adam_lr;
    oc.weight_decay = c->weight_decay;
    oc.adam_weight_decay = c->optim == MUON_ALGO_ADAMW ? c->weight_decay : c->adam_weight_decay;
    oc.momentum = c->momentum;
    oc.nesterov = c->nesterov;
    oc.scale = c->scale;
    oc.adam_beta1 = c->adam_beta1;
    oc.adam_beta2 = c->adam_beta2;
    oc.ortho = c->ortho;
    oc.threads = c->threads;
    oc.spectrum_power = c->spectrum_power;
    oc.fanion_alpha = c->fanion_alpha;
    oc.sign_scale = c->sign_scale;
    oc.fanion_k = c->fanion_k;
    /* Xmodel-2.5: the hidden matrices move to Muon where wsd's decay starts */
    muon_schedule s = muon_schedule_default();
    s.kind = c->schedule;
    s.total_steps = c->steps;
    s.warmup_steps = c->warmup;
    s.decay_shape = c->decay_shape;
    oc.switch_step = muon_schedule_decay_start(&s);
    return oc;
}

void train_family_to_json(const train_config *c, cJSON *o)
{
    cJSON_AddNumberToObject(o, "adam_weight_decay", c->adam_weight_decay);
    cJSON_AddStringToObject(o, "scale", muon_scale_name(c->scale));
    cJSON_AddBoolToObject(o, "nesterov", c->nesterov);
    cJSON_AddNumberToObject(o, "spectrum_power", c->spectrum_power);
    cJSON_AddNumberToObject(o, "fanion_alpha", c->fanion_alpha);
    cJSON_AddNumberToObject(o, "sign_scale", c->sign_scale);
    cJSON_AddNumberToObject(o, "fanion_k", c->fanion_k);
    cJSON_AddStringToObject(o, "wsd_decay", muon_decay_shape_name(c->decay_shape));
}

static int num(const cJSON *o, const char *k, double *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!it)
        return 0;
    if (!cJSON_IsNumber(it))
        return -1;
    *v = it->valuedouble;
    return 0;
}

const char *train_family_from_json(const cJSON *o, train_config *c)
{
    double k = c->fanion_k;
    c->adam_weight_decay = -1;
    if (num(o, "adam_weight_decay", &c->adam_weight_decay))
        return "adam_weight_decay";
    if (num(o, "spectrum_power", &c->spectrum_power))
        return "spectrum_power";
    if (num(o, "fanion_alpha", &c->fanion_alpha))
        return "fanion_alpha";
    if (num(o, "sign_scale", &c->sign_scale))
        return "sign_scale";
    if (num(o, "fanion_k", &k) || k < 1 || k > 1e9)
        return "fanion_k";
    c->fanion_k = (int)k;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "scale");
    if (it && (!cJSON_IsString(it) || muon_scale_parse(it->valuestring, &c->scale)))
        return "scale";
    it = cJSON_GetObjectItemCaseSensitive(o, "nesterov");
    if (it && !cJSON_IsBool(it))
        return "nesterov";
    if (it)
        c->nesterov = cJSON_IsTrue(it);
    it = cJSON_GetObjectItemCaseSensitive(o, "wsd_decay");
    if (it && (!cJSON_IsString(it) || muon_decay_shape_parse(it->valuestring, &c->decay_shape)))
        return "wsd_decay";
    return NULL;
}
