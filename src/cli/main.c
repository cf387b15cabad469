/* build/muon: dispatch to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "muon.h"

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--version")) {
        printf("muon %s\n", muon_version());
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "muon: unknown command '%s'\n", argv[1]);
    return 2;
}
