/* The flags `muon train` and `muon compare` share, and their reading into a
 * train_config. */
#ifndef MUON_CLI_TRAIN_FLAGS_H
#define MUON_CLI_TRAIN_FLAGS_H

#include "cli/args.h"
#include "train/train.h"

typedef enum { TRAIN_FLAGS_TRAIN, TRAIN_FLAGS_COMPARE } train_flags_mode;

extern const cli_flag cli_train_flag_table[];
extern const int cli_train_flag_count;
extern const cli_flag cli_compare_flag_table[];
extern const int cli_compare_flag_count;

/* Fill *c from the parsed flags. Defaults come from train_config_default(),
 * or, with --resume CKPT (train only), from the checkpoint's own
 * configuration, so a resume needs no other flag; *resume then points at
 * CKPT. Returns 0, 2 (usage, message printed) or 1 (unreadable checkpoint). */
int cli_train_config_from_args(const cli_args *a, train_flags_mode mode, train_config *c,
                               const char **resume);

/* The trainer's subcommands (moved into cli.h's list once it settles). */
int cli_train(int argc, char **argv);     /* cmd_train.c */
int cli_compare(int argc, char **argv);   /* cmd_compare.c */
int cli_sample(int argc, char **argv);    /* cmd_sample.c */
int cli_ckpt_diff(int argc, char **argv); /* cmd_ckpt_diff.c */

#endif
