/*  The unit suites, one per module: test_<module>.c defines <module>_suite().  */
#ifndef VDT_SUITES_H_INCLUDED
#define VDT_SUITES_H_INCLUDED

#include <check.h>

Suite *vdp_ids_suite(void);
Suite *vdp_topic_suite(void);
Suite *vdp_envelope_suite(void);
Suite *vdp_msg_suite(void);
Suite *vdp_agency_suite(void);
Suite *vdp_rate_suite(void);
Suite *vdb_registry_suite(void);
Suite *vdb_subs_suite(void);
Suite *vdb_acl_suite(void);
Suite *vdb_config_suite(void);
Suite *vdb_store_suite(void);
Suite *vdb_pending_suite(void);
Suite *vdb_committer_suite(void);
Suite *vdb_checkpoint_suite(void);
Suite *vdb_control_suite(void);
Suite *vdb_limiter_suite(void);
Suite *vdp_audit_suite(void);
Suite *vdb_audit_suite(void);
Suite *vdp_sig_suite(void);

#endif
