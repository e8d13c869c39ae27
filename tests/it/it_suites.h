/*  The integration suites: each starts the real vedettad and real clients.  */
#ifndef VDT_IT_SUITES_H_INCLUDED
#define VDT_IT_SUITES_H_INCLUDED

#include <check.h>

Suite *it_broker_suite(void);
Suite *it_client_suite(void);
Suite *it_store_suite(void);
Suite *it_durable_suite(void);
Suite *it_cli_durable_suite(void);
Suite *it_reload_suite(void);
Suite *it_rate_suite(void);
Suite *it_audit_suite(void);
Suite *it_verify_suite(void);
//  A unit suite of libvedetta, run here because this runner links it.
Suite *vd_keyring_suite(void);

#endif
