/*  libFuzzer target: the envelope decoder on arbitrary bytes. It must never crash; what it accepts
    must validate, re-encode, decode again to the same envelope, and encode canonically (the second
    encoding equals the first). Ownership must keep the fields intact.  */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vedetta.h"
#include "vdp_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdp_envelope_t env = { 0 };
    char reason[256] = "";
    int rc = vdp_envelope_decode(&env, data, size, reason, sizeof reason);
    if (rc != VD_OK) {
        CHECK(rc == VD_EPROTO || rc == VD_ELIMIT || rc == VD_EFIELD);
        CHECK(reason[0] != '\0');
        CHECK(env.raw == NULL && env.body == NULL);
        CHECK(env.id[0] == '\0' || strlen(env.id) == 36);
        return 0;
    }
    CHECK(env.raw == data && env.raw_len == size);
    CHECK(vdp_envelope_validate(&env, reason, sizeof reason) == VD_OK);

    uint8_t *first;
    size_t first_size;
    if (vdp_envelope_encode(&env, &first, &first_size) != VD_OK) {
        vdp_envelope_reset(&env);
        return 0; // out of memory: nothing to compare
    }
    vdp_envelope_t again = { 0 };
    CHECK(vdp_envelope_decode(&again, first, first_size, reason, sizeof reason) == VD_OK);
    CHECK(vdp_envelope_same(&env, &again));
    uint8_t *second;
    size_t second_size;
    if (vdp_envelope_encode(&again, &second, &second_size) == VD_OK) {
        CHECK(second_size == first_size && memcmp(first, second, first_size) == 0);
        free(second);
    }
    //  Owned copies stand alone and say the same
    if (vdp_envelope_own(&env) == VD_OK) {
        CHECK(env.raw == env.owned_raw && env.raw_len == size);
        CHECK(memcmp(env.raw, data, size) == 0);
        CHECK(vdp_envelope_same(&env, &again));
    }
    vdp_envelope_reset(&again);
    vdp_envelope_reset(&env);
    free(first);
    return 0;
}
