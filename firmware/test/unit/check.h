/* check.h - the few macros the host unit tests use (no test framework needed).
 *
 * Why it exists: the tests must build with nothing but gcc. A test is a
 * function; CHECK records a failed condition with its location and keeps
 * going; RUN counts the test as passed when none of its checks failed. The
 * runner (unit_main.c) prints "N passed, N failed" as its last line.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <string.h>

extern int check_failures; /* failed checks in the current test */
extern int tests_passed, tests_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_INT(a, b)                                                                       \
    do {                                                                                      \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                 \
        if (va_ != vb_) {                                                                     \
            check_failures++;                                                                 \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
                    #a, va_, #b, vb_);                                                        \
        }                                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                                   \
    do {                                                                                  \
        const char *sa_ = (a), *sb_ = (b);                                                \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                        \
            check_failures++;                                                             \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    #a, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                      \
        }                                                                                 \
    } while (0)

#define RUN(fn)                                                 \
    do {                                                        \
        check_failures = 0;                                     \
        fn();                                                   \
        if (check_failures == 0) {                              \
            tests_passed++;                                     \
        } else {                                                \
            tests_failed++;                                     \
            fprintf(stderr, "FAIL %s (%d checks)\n", #fn, check_failures); \
        }                                                       \
    } while (0)

/* One entry point per test file, called by unit_main.c. */
void suite_json(void);
void suite_hash(void);
void suite_version(void);
void suite_backoff(void);
void suite_url(void);
void suite_proto(void);
void suite_client(void);
void suite_mgmt(void);
void suite_manage(void);
void suite_trust(void);

#endif /* CHECK_H */
