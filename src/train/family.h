/* The optimizer family's part of a training configuration: its JSON keys
 * (written by train_config_to_json, read back by train_config_from_json)
 * and the library configuration a run builds from it. */
#ifndef MUON_TRAIN_FAMILY_H
#define MUON_TRAIN_FAMILY_H

#include <cJSON.h>

#include "train/train.h"

/* Adds adam_weight_decay, scale, nesterov, spectrum_power, fanion_alpha,
 * sign_scale, fanion_k and wsd_decay to o. */
void train_family_to_json(const train_config *c, cJSON *o);
/* Reads those keys where present (configurations written before them keep
 * the defaults; adam_weight_decay absent is set to -1 for the caller to
 * replace with weight_decay). Returns the first bad key's name, or NULL. */
const char *train_family_from_json(const cJSON *o, train_config *c);

#endif
