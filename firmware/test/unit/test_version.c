/* test_version.c - version ordering (rules in ofc_version.h). */
#include "../../src/core/ofc_version.h"
#include "check.h"

static int sign(int x) { return x < 0 ? -1 : (x > 0); }

/* Each list is strictly ascending; every pair is checked both ways. */
static void check_ascending(const char *const *v, int n)
{
    int i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            int want = i < j ? -1 : (i > j), got = sign(ofc_version_compare(v[i], v[j]));
            if (got != want) fprintf(stderr, "  compare(%s, %s) = %d, want %d\n", v[i], v[j], got, want);
            CHECK_INT(got, want);
        }
}

static void test_semver_order(void)
{
    static const char *const v[] = {"0.9.9",        "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                    "1.0.0-beta",   "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                                    "1.0.0",        "1.0.1",        "1.2.0",         "1.10.0",
                                    "2.0.0",        "10.0.0"};
    check_ascending(v, (int)(sizeof v / sizeof v[0]));
}

static void test_git_describe_order(void)
{
    static const char *const v[] = {"v1.4.0-rc1",        "v1.4.0-rc1-3-g1a2b3c4", "v1.4.0",
                                    "v1.4.0-1-gdeadbee", "v1.4.0-2-g0296947-dirty", "1.4.0-10-gabcdef0",
                                    "v1.4.1"};
    check_ascending(v, (int)(sizeof v / sizeof v[0]));
}

static void test_equalities(void)
{
    CHECK_INT(ofc_version_compare("1.2", "1.2.0"), 0);
    CHECK_INT(ofc_version_compare("v1.2.3", "1.2.3"), 0);
    CHECK_INT(ofc_version_compare("V1.2.3", "1.2.3"), 0);
    CHECK_INT(ofc_version_compare("1.2.3+build.5", "1.2.3"), 0);
    CHECK_INT(ofc_version_compare("1.2.3-dirty", "1.2.3"), 0);
    CHECK_INT(ofc_version_compare("01.002.3", "1.2.3"), 0);
    CHECK_INT(ofc_version_compare(" 1.2.3 ", "1.2.3"), 0);
    CHECK_INT(ofc_version_compare(NULL, ""), 0);
    CHECK_INT(ofc_version_compare("abc", "abc"), 0);
}

static void test_huge_and_odd(void)
{
    CHECK(ofc_version_compare("99999999999999999999999.0", "99999999999999999999998.9") > 0);
    CHECK(ofc_version_compare("1.0.0", "heads/idf-release/v4.4-0-gd4572") != 0);
    CHECK(ofc_version_compare("d4572", "e1234") < 0); /* unordered: byte order, stable */
    CHECK(ofc_version_compare("1.0.0-rc.1", "1.0.0-rc.1.0") < 0);
    CHECK(ofc_version_compare("1.0.0-1", "1.0.0-a") < 0); /* numeric identifiers first */
    CHECK_INT(ofc_version_compare("1.0.", "1.0"), 0); /* a bare trailing dot adds nothing */
}

void suite_version(void)
{
    RUN(test_semver_order);
    RUN(test_git_describe_order);
    RUN(test_equalities);
    RUN(test_huge_and_odd);
}
