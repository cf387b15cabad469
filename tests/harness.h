/* The test harness: TEST(name) registers a case at load time (one runner,
 * tests/main.c, runs them all); ASSERT_* macros print both values with file
 * and line and end the case on failure. */
#ifndef MUON_TEST_HARNESS_H
#define MUON_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

#include "muon.h"

void mt_register(const char *name, void (*fn)(void), const char *file);
void mt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mt_skip(const char *reason);
/* Seed used by the current case's random inputs; printed on failure. */
extern unsigned long long mt_seed;

#define TEST(name)                                                           \
    static void name(void);                                                  \
    __attribute__((constructor)) static void name##__register(void)          \
    {                                                                        \
        mt_register(#name, name, __FILE__);                                  \
    }                                                                        \
    static void name(void)

#define ASSERT(cond)                                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            mt_fail(__FILE__, __LINE__, "ASSERT(%s)", #cond);                \
            return;                                                          \
        }                                                                    \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                  \
    do {                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                  \
        if (a_ != b_) {                                                      \
            mt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
            return;                                                          \
        }                                                                    \
    } while (0)

/* |a - b| <= tol, and neither is NaN */
#define ASSERT_NEAR(a, b, tol)                                               \
    do {                                                                     \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);       \
        if (!(fabs(a_ - b_) <= t_)) {                                        \
            mt_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (diff %.3g > tol %.3g)", \
                    #a, #b, a_, b_, fabs(a_ - b_), t_);                      \
            return;                                                          \
        }                                                                    \
    } while (0)

/* a <= b, and neither is NaN */
#define ASSERT_LE(a, b)                                                      \
    do {                                                                     \
        double a_ = (double)(a), b_ = (double)(b);                           \
        if (!(a_ <= b_)) {                                                   \
            mt_fail(__FILE__, __LINE__, "%s <= %s: %.9g > %.9g", #a, #b, a_, b_); \
            return;                                                          \
        }                                                                    \
    } while (0)

#define ASSERT_STATUS(expr, want)                                            \
    do {                                                                     \
        muon_status s_ = (expr), w_ = (want);                                \
        if (s_ != w_) {                                                      \
            mt_fail(__FILE__, __LINE__, "%s returned %s, expected %s", #expr, \
                    muon_status_name(s_), muon_status_name(w_));             \
            return;                                                          \
        }                                                                    \
    } while (0)

#define ASSERT_OK(expr) ASSERT_STATUS(expr, MUON_OK)

#define SKIP(reason)                                                         \
    do {                                                                     \
        mt_skip(reason);                                                     \
        return;                                                              \
    } while (0)

#endif
