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
    CHECK(ofc_version_compare("1.0.", "1.0") != 0); /* "1.0." is not a version */
}

/* The server's table (docs/versions.md): the same answers on both sides. */
static void test_red_team_cases(void)
{
    static const char *const rc[] = {"1.0.0-rc.2", "1.0.0-rc.9", "1.0.0-rc.10", "1.0.0-rc.100", "1.0.0"};
    static const char *const build[] = {"1.2.4-rc.1", "1.2.4+build.7", "1.2.5-rc.1+build.1"};
    static const char *const idents[] = {"1.0.0-1",     "1.0.0-2",     "1.0.0-10",  "1.0.0-RC", "1.0.0-a",
                                         "1.0.0-a.1",   "1.0.0-a.1.0", "1.0.0-a-b", "1.0.0-rc10", "1.0.0-rc9"};
    static const char *const describe[] = {"v1.2.3-rc.1", "v1.2.3-rc.1-3-g1a2b3c4", "1.2.3",
                                           "v1.2.3-1-gdeadbee", "v1.2.3-4-gabc1234", "v1.2.3-10-g0123abc-dirty",
                                           "1.2.3.4", "1.2.3.4.1", "1.2.4-rc.1", "1.2.4"};
    check_ascending(rc, (int)(sizeof rc / sizeof rc[0]));
    check_ascending(build, (int)(sizeof build / sizeof build[0]));
    check_ascending(idents, (int)(sizeof idents / sizeof idents[0]));
    check_ascending(describe, (int)(sizeof describe / sizeof describe[0]));
    CHECK_INT(ofc_version_compare("1.2.3+build.5", "1.2.3+build.6"), 0);
    CHECK_INT(ofc_version_compare("v1.2.3-4-gabc1234-dirty", "1.2.3-4-gabc1234"), 0);
    CHECK_INT(ofc_version_compare("v1.2.3-4-gabc1234", "v1.2.3-4-g9999999"), 0);
    CHECK_INT(ofc_version_compare("1.0.0-rc.01", "1.0.0-rc.1"), 0);
    CHECK_INT(ofc_version_compare("1.2.3", "1.2.3.0"), 0);
}

/* What the server does not order, the client never calls a downgrade. */
static void test_not_versions(void)
{
    static const char *const odd[] = {"9036908-dirty", "d4572", "heads/idf-release/v4.4-0-gd4572",
                                      "qa-test-v5.0", "1.2.3.4.5.6", "1.0.", "1..0", "1.0.0-",
                                      "1.0.0-rc..1", "1.0.0-rc_1", "", "v"};
    size_t i;
    for (i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        CHECK_INT(ofc_version_is_older(odd[i], "1.0.0"), 0);
        CHECK_INT(ofc_version_is_older("1.0.0", odd[i]), 0);
    }
    CHECK_INT(ofc_version_is_older("1.2.4-rc.1", "1.2.4+build.7"), 1);
    CHECK_INT(ofc_version_is_older("1.0.0-rc.10", "1.0.0-rc.9"), 0);
    CHECK_INT(ofc_version_is_older("1.0.0-rc.9", "1.0.0-rc.10"), 1);
    CHECK_INT(ofc_version_is_older("1.2.3", "1.2.3"), 0);
}

void suite_version(void)
{
    RUN(test_semver_order);
    RUN(test_git_describe_order);
    RUN(test_equalities);
    RUN(test_huge_and_odd);
    RUN(test_red_team_cases);
    RUN(test_not_versions);
}
