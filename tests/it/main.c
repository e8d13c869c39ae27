/*  Runs every integration suite; CK_RUN_SUITE=<suite> (read by Check) runs one.  */
#include <signal.h>
#include <stdlib.h>

#include <czmq.h>
#include <sodium.h>

#include "it_suites.h"

int
main(void)
{
    if (sodium_init() < 0)
        return EXIT_FAILURE;
    signal(SIGPIPE, SIG_IGN);
    zsys_handler_set(NULL); // Check's forks and our child brokers get default signal handling
    SRunner *runner = srunner_create(it_broker_suite());
    srunner_add_suite(runner, it_client_suite());
    srunner_add_suite(runner, it_store_suite());
    srunner_add_suite(runner, it_durable_suite());
    srunner_add_suite(runner, it_cli_durable_suite());
    srunner_add_suite(runner, it_reload_suite());
    srunner_add_suite(runner, it_rate_suite());
    srunner_add_suite(runner, it_audit_suite());
    srunner_add_suite(runner, it_verify_suite());
    srunner_add_suite(runner, vd_keyring_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
