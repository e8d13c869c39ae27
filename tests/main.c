/*  Runs every unit suite; CK_RUN_SUITE=<module> (read by Check) runs one.  */
#include <stdlib.h>

#include <sodium.h>

#include "suites.h"

int
main(void)
{
    if (sodium_init() < 0)
        return EXIT_FAILURE;
    SRunner *runner = srunner_create(vdp_ids_suite());
    srunner_add_suite(runner, vdp_topic_suite());
    srunner_add_suite(runner, vdp_envelope_suite());
    srunner_add_suite(runner, vdp_msg_suite());
    srunner_add_suite(runner, vdp_agency_suite());
    srunner_add_suite(runner, vdp_rate_suite());
    srunner_add_suite(runner, vdb_registry_suite());
    srunner_add_suite(runner, vdb_subs_suite());
    srunner_add_suite(runner, vdb_acl_suite());
    srunner_add_suite(runner, vdb_config_suite());
    srunner_add_suite(runner, vdb_store_suite());
    srunner_add_suite(runner, vdb_pending_suite());
    srunner_add_suite(runner, vdb_committer_suite());
    srunner_add_suite(runner, vdb_checkpoint_suite());
    srunner_add_suite(runner, vdb_control_suite());
    srunner_add_suite(runner, vdb_limiter_suite());
    srunner_add_suite(runner, vdp_audit_suite());
    srunner_add_suite(runner, vdb_audit_suite());
    srunner_add_suite(runner, vdp_sig_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
