/*  vdp_mp: a total msgpack reader over a borrowed byte span, and the buffer growth the encoders
    share. Encoding itself uses msgpack-c's packer (msgpack_packer).

    Reading never allocates. Every length and every declared element count is checked against
    the bytes remaining before it is used: a string of N bytes needs N bytes left, an array of N
    elements at least N, a map of N pairs at least 2N (each element takes one byte at least).
    Each vdp_mp_read_* call either consumes exactly one value and returns VD_OK, or consumes
    nothing and returns VD_EPROTO (truncated input, wrong type, value out of range) or, for
    vdp_mp_skip, VD_ELIMIT (a map over VDP_MAX_MAP_KEYS). Pointers returned for strings and bins
    borrow from the span.  */

#ifndef VDP_MP_H_INCLUDED
#define VDP_MP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdp_limits.h"

typedef struct vdp_mp_t {
    const uint8_t *data; // borrowed
    size_t size;
    size_t pos; // next byte to read
} vdp_mp_t;

typedef enum {
    VDP_MP_END = 0, // no bytes left
    VDP_MP_INVALID, // 0xc1, the one byte msgpack never uses
    VDP_MP_NIL,
    VDP_MP_BOOL,
    VDP_MP_UINT, // positive fixint, uint 8..64
    VDP_MP_INT,  // negative fixint, int 8..64 (whatever the sign of the value)
    VDP_MP_FLOAT,
    VDP_MP_STR,
    VDP_MP_BIN,
    VDP_MP_ARRAY,
    VDP_MP_MAP,
    VDP_MP_EXT
} vdp_mp_type_t;

//  Starts reading `size` bytes at `data` (borrowed).
void vdp_mp_init(vdp_mp_t *self, const uint8_t *data, size_t size);

//  Bytes not read yet.
size_t vdp_mp_left(const vdp_mp_t *self);

//  The type of the next value, from its first byte only (the value may still be truncated).
vdp_mp_type_t vdp_mp_peek(const vdp_mp_t *self);

//  A map header: *count pairs follow. Checks 2 * count <= bytes left.
int vdp_mp_read_map(vdp_mp_t *self, uint32_t *count);

//  An array header: *count elements follow. Checks count <= bytes left.
int vdp_mp_read_array(vdp_mp_t *self, uint32_t *count);

//  A str: *str points at *len bytes, not NUL-terminated.
int vdp_mp_read_str(vdp_mp_t *self, const char **str, uint32_t *len);

//  A bin: *bin points at *len bytes.
int vdp_mp_read_bin(vdp_mp_t *self, const uint8_t **bin, uint32_t *len);

//  An integer of any width and signedness whose value is >= 0.
int vdp_mp_read_uint(vdp_mp_t *self, uint64_t *value);

//  An integer of any width and signedness whose value fits int64_t.
int vdp_mp_read_int(vdp_mp_t *self, int64_t *value);

int vdp_mp_read_bool(vdp_mp_t *self, bool *value);

int vdp_mp_read_nil(vdp_mp_t *self);

/*  Skips one value of any type. `depth` is how many levels of containers it may open: 0 allows
    scalars only, 1 a map or array of scalars, and so on. Deeper nesting is VD_EPROTO; a map with
    more than VDP_MAX_MAP_KEYS pairs is VD_ELIMIT. Recursion is bounded by `depth`; time by the
    span's size, since every element consumes at least one byte.  */
int vdp_mp_skip(vdp_mp_t *self, unsigned depth);

/*  Makes room for `need` more bytes after `size` in the malloc'd buffer *data of *capacity bytes,
    doubling the capacity (at least `min_capacity`) so that appending stays amortised O(1).
    Returns VD_OK or VD_ENOMEM (the buffer is unchanged).  */
int vdp_mp_grow(uint8_t **data, size_t *capacity, size_t size, size_t need, size_t min_capacity);

#endif
