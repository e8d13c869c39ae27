/*  fuzz_agency: any bytes, read as a public agency file and as a secret file, give a result or an
    error, never a crash. Beyond crashes it checks three properties and aborts if one fails:
    - the error text names the file and is NUL-terminated within its buffer;
    - an accepted file passes vdp_agency_check (loading and checking agree);
    - the error is never "not valid ZPL": that would mean our ZPL pre-check let through text that
      zconfig then refused, i.e. the two parsers disagree.
    Seeds: a generated .agency file and secret file make good starting points.  */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdp_agency.h"
#include "vedetta.h"

#define S_NAME "fuzz.agency"

static void
s_check_error(int rc, const char *err, size_t err_size)
{
    if (rc == VD_OK)
        return;
    if (rc != VD_ECONFIG || !memchr(err, '\0', err_size))
        abort();
    if (strncmp(err, S_NAME ": ", strlen(S_NAME ": ")) != 0)
        abort();
    //  The whole message, exactly: values echoed in other messages may say anything.
    if (strcmp(err, S_NAME ": not valid ZPL") == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    memset(err, 'x', sizeof err);
    vdp_agency_t agency;
    int rc = vdp_agency_parse((const char *)data, size, S_NAME, &agency, err, sizeof err);
    s_check_error(rc, err, sizeof err);
    if (rc == VD_OK && vdp_agency_check(&agency, NULL, 0) != VD_OK)
        abort();

    memset(err, 'x', sizeof err);
    vdp_secret_t secret;
    rc = vdp_secret_parse((const char *)data, size, S_NAME, &secret, err, sizeof err);
    s_check_error(rc, err, sizeof err);
    if (rc == VD_OK) {
        uint8_t public_key[VDP_KEY_BYTES], secret_key[VDP_KEY_BYTES];
        uint8_t sign_key[VDP_SIGN_SECRET_BYTES];
        if (vdp_agency_check(&secret.agency, NULL, 0) != VD_OK ||
            vdp_secret_curve_keys(&secret, public_key, secret_key) != VD_OK ||
            vdp_secret_sign_key(&secret, sign_key) != VD_OK)
            abort();
    }
    vdp_secret_wipe(&secret);
    return 0;
}
