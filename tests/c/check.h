/*
 * Assertion helpers shared by the plain-C99 test programs of tests/c/ (no framework): checks count
 * into g_passed / g_failed, print the failing expression with the current test's name, and the
 * program prints "N passed, M failed" last and exits 0 only when nothing failed.
 * Include once per test program (the counters are defined here).
 */
#ifndef ECGEDGE_TESTS_CHECK_H
#define ECGEDGE_TESTS_CHECK_H

#include <stdio.h>

static unsigned g_passed, g_failed, g_test_failed;
static const char *g_test = "";

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (cond) {                                                                               \
            g_passed++;                                                                           \
        } else {                                                                                  \
            g_failed++;                                                                           \
            g_test_failed++;                                                                      \
            printf("FAIL [%s] %s:%d: %s\n", g_test, __FILE__, __LINE__, #cond);                   \
        }                                                                                         \
    } while (0)

#define CHECK_EQ(a, b)                                                                            \
    do {                                                                                          \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                     \
        if (va_ == vb_) {                                                                         \
            g_passed++;                                                                           \
        } else {                                                                                  \
            g_failed++;                                                                           \
            g_test_failed++;                                                                      \
            printf("FAIL [%s] %s:%d: %s == %s (%lld != %lld)\n", g_test, __FILE__, __LINE__, #a,  \
                   #b, va_, vb_);                                                                 \
        }                                                                                         \
    } while (0)

#define RUN(fn)                                                                                   \
    do {                                                                                          \
        g_test = #fn;                                                                             \
        g_test_failed = 0;                                                                        \
        fn();                                                                                     \
        printf("%s %s\n", g_test_failed ? "FAIL" : "ok  ", #fn);                                  \
    } while (0)

#endif /* ECGEDGE_TESTS_CHECK_H */
