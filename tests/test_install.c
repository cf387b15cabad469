/* `make install` into a temporary prefix, then build examples/train_loop.c
 * outside the repository with `pkg-config --cflags --libs muon` against the
 * installed shared library, run it, and check what was installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "testutil.h"

static int exists(const char *dir, const char *rel)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return stat(p, &st) == 0;
}

/* The number after `key` in text, or NAN. */
static double number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

TEST(install_prefix_pkgconfig_example)
{
    const char *build = tu_build_dir();
    if (strcmp(build, "build") != 0)
        SKIP("install test only runs on the normal build: an external program linking the "
             "sanitizer build of libmuon.so would need the -fsanitize runtime too");
    if (!exists(".", "Makefile") || !exists(".", "examples/train_loop.c"))
        SKIP("not run from the repository root (Makefile, examples/train_loop.c not found)");
    if (tu_run("command -v pkg-config && command -v cc", NULL) != 0)
        SKIP("pkg-config or cc is not installed");

    const char *tmp = tu_tmpdir();
    char prefix[512], cmd[4096], *out = NULL;
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);

    snprintf(cmd, sizeof cmd, "make -s install PREFIX=%s BUILD=%s", prefix, build);
    int rc = tu_run(cmd, &out);
    if (rc != 0)
        printf("    %s\n%s", cmd, out);
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(exists(prefix, "include/muon.h"));
    ASSERT(exists(prefix, "lib/libmuon.a"));
    ASSERT(exists(prefix, "lib/libmuon.so"));
    ASSERT(exists(prefix, "lib/libmuon.so.0"));
    ASSERT(exists(prefix, "lib/pkgconfig/muon.pc"));
    ASSERT(exists(prefix, "bin/muon"));

    snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --modversion muon",
             prefix);
    rc = tu_run(cmd, &out);
    int version_ok = rc == 0 && strcmp(out, "0.1.0\n") == 0;
    if (!version_ok)
        printf("    %s printed: %s\n", cmd, out);
    free(out);
    ASSERT(version_ok);

    /* The runtime name programs record must carry the ABI version. */
    snprintf(cmd, sizeof cmd,
             "(readelf -d %s/lib/libmuon.so 2>/dev/null || objdump -p %s/lib/libmuon.so)"
             " | grep SONAME", prefix, prefix);
    rc = tu_run(cmd, &out);
    int soname_ok = rc == 0 && strstr(out, "libmuon.so.0") != NULL &&
                    strstr(out, "libmuon.so.0.") == NULL;
    if (!soname_ok)
        printf("    SONAME line: %s\n", out);
    free(out);
    ASSERT(soname_ok);

    /* Compile a copy outside the repository so only the installed header and
     * library can be found, with the example's own warning flags. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/app && cp examples/train_loop.c %s/app/ && cd %s/app && "
             "cc -std=c11 -O2 -Wall -Wextra -Werror train_loop.c "
             "$(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs muon) -lm "
             "-o train_loop",
             tmp, tmp, tmp, prefix);
    rc = tu_run(cmd, &out);
    if (rc != 0)
        printf("    %s\n%s", cmd, out);
    free(out);
    ASSERT_EQ_INT(rc, 0);

    /* It must load the installed library, not one from the build tree. */
    snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH=%s/lib ldd %s/app/train_loop | grep libmuon",
             prefix, tmp);
    rc = tu_run(cmd, &out);
    int ldd_ok = rc == 0 && strstr(out, prefix) != NULL && strstr(out, "libmuon.so.0") != NULL;
    if (!ldd_ok)
        printf("    ldd: %s\n", out);
    free(out);
    ASSERT(ldd_ok);

    snprintf(cmd, sizeof cmd, "cd %s/app && LD_LIBRARY_PATH=%s/lib ./train_loop opt.state",
             tmp, prefix);
    rc = tu_run(cmd, &out);
    double final = number_after(out, "final loss "), first = number_after(out, "(initial ");
    int ran_ok = rc == 0 && strstr(out, "step   0  loss") != NULL;
    if (!ran_ok || !(final < 0.5 * first))
        printf("    train_loop exit %d, output:\n%s", rc, out);
    free(out);
    ASSERT(ran_ok);
    /* The loss must at least halve: a broken optimizer step would not. */
    ASSERT_LE(final, 0.5 * first);
    ASSERT(final > 0);
    ASSERT(exists(tmp, "app/opt.state"));

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    tu_run(cmd, NULL);
}
