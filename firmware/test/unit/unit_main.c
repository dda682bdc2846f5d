/* unit_main.c - runs every host unit test suite of the portable core.
 *
 * Why it exists: `make -C firmware test` builds this with the sanitizers on
 * and reads its last line, "N passed, N failed"; the exit status is non-zero
 * when anything failed.
 */
#include "check.h"

int check_failures;
int tests_passed, tests_failed;

int main(void)
{
    suite_json();
    suite_hash();
    suite_version();
    suite_backoff();
    suite_url();
    suite_proto();
    suite_client();
    suite_mgmt();
    suite_manage();
    suite_trust();
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed ? 1 : 0;
}
