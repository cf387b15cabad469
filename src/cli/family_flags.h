/* The optimizer family's flags, shared by `muon train` and `muon compare`
 * (appended to their tables in train_flags.c). */
#ifndef MUON_CLI_FAMILY_FLAGS_H
#define MUON_CLI_FAMILY_FLAGS_H

#include "cli/args.h"
#include "train/train.h"

#define FAMILY_FLAGS                                                                           \
    {"scale", "RULE", CLI_VALUE, "Muon update scale: moonlight | keller | spectral | none "     \
                                 "(default moonlight)"},                                       \
    {"nesterov", NULL, CLI_SWITCH, "Nesterov momentum (on unless --no-nesterov)"},                         \
    {"no-nesterov", NULL, CLI_SWITCH, "plain momentum: the update uses M, not G + mu M"},      \
    {"adam-weight-decay", "X", CLI_VALUE, "the AdamW group's weight decay (default: "          \
                                          "--weight-decay)"},                                  \
    {"spectrum-power", "P", CLI_VALUE, "Muon's singular values s -> s^p via the SVD; 0 is "    \
                                       "Muon (default 0)"},                                    \
    {"fanion-k", "K", CLI_VALUE, "fanion-k: singular directions kept (default 16)"},           \
    {"fanion-alpha", "A", CLI_VALUE, "fmuon/smuon: weight of the orthogonal part (default "    \
                                     "0.5)"},                                                  \
    {"sign-scale", "X", CLI_VALUE, "smuon: factor of sign(N) (default 0.01)"},                 \
    {"wsd-decay", "SHAPE", CLI_VALUE, "wsd's decay: linear | xmodel (default linear)"}

/* Read the family's flags into *c (after --weight-decay has been read: the
 * AdamW group's decay follows it unless given). Returns 0 or 2 (usage,
 * message printed). */
int cli_family_flags_read(const cli_args *a, train_config *c);

/* `muon compare --preset NAME`: "default" changes nothing; "moonlight" is
 * the Moonlight recipe (weight decay 0.1 on both groups, moonlight scale,
 * Nesterov momentum 0.95) where the flags do not say otherwise. Returns 0
 * or 2 (usage). */
int cli_compare_preset(const cli_args *a, train_config *c);

#endif
