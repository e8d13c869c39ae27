/*  vdp_mp: a total msgpack reader. Invariants: pos <= size at all times; a read either consumes
    one whole value or nothing; no length or count is used before it is checked against the bytes
    left.

    Why not msgpack-c's unpacker (msgpack_unpack_next / msgpack_unpacker): it builds a tree of
    msgpack_object in a zone and sizes each array and map from the count the peer declares before
    it knows that the elements exist, so a 5-byte frame (0xdd ff ff ff ff) asks the allocator for
    gigabytes; and its depth limit is a compile-time constant far above ours. A peer must not be
    able to choose our allocations, so the read path walks the bytes in place and allocates
    nothing. Encoding has no such problem: we choose the sizes, so it uses msgpack-c's packer.  */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "vedetta.h"
#include "vdp_mp.h"

void
vdp_mp_init(vdp_mp_t *self, const uint8_t *data, size_t size)
{
    assert(self);
    assert(data || size == 0);
    self->data = data;
    self->size = size;
    self->pos = 0;
}

size_t
vdp_mp_left(const vdp_mp_t *self)
{
    return self->size - self->pos;
}

//  Big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes at p.
static inline uint64_t
s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*  The length or count that follows a marker in `width` (1, 2 or 4) big-endian bytes, for a
    value at p with `left` >= 1 bytes: *hdr is the marker plus those bytes. False if truncated.  */
static inline bool
s_length(const uint8_t *p, size_t left, size_t width, size_t *hdr, uint64_t *n)
{
    if (left < 1 + width)
        return false;
    *hdr = 1 + width;
    *n = s_be(p + 1, width);
    return true;
}

vdp_mp_type_t
vdp_mp_peek(const vdp_mp_t *self)
{
    if (self->pos >= self->size)
        return VDP_MP_END;
    uint8_t b = self->data[self->pos];
    if (b <= 0x7f)
        return VDP_MP_UINT;
    if (b <= 0x8f)
        return VDP_MP_MAP;
    if (b <= 0x9f)
        return VDP_MP_ARRAY;
    if (b <= 0xbf)
        return VDP_MP_STR;
    if (b >= 0xe0)
        return VDP_MP_INT;
    switch (b) {
    case 0xc0:
        return VDP_MP_NIL;
    case 0xc2:
    case 0xc3:
        return VDP_MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return VDP_MP_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return VDP_MP_EXT;
    case 0xca:
    case 0xcb:
        return VDP_MP_FLOAT;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        return VDP_MP_UINT;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        return VDP_MP_INT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return VDP_MP_STR;
    case 0xdc:
    case 0xdd:
        return VDP_MP_ARRAY;
    case 0xde:
    case 0xdf:
        return VDP_MP_MAP;
    default:
        return VDP_MP_INVALID; // 0xc1
    }
}

/*  The readers below run for every key and value the broker receives, so each decodes its
    marker directly (fix forms first, the common case) rather than through vdp_mp_peek().  */

//  A map or array header: fix form (`fix` in the high nibble), 16- or 32-bit count. Each
//  declared element needs at least `min_bytes` more bytes, checked before anything is used.
static int
s_read_header(vdp_mp_t *self,
              uint8_t fix,
              uint8_t marker16,
              uint8_t marker32,
              uint64_t min_bytes,
              uint32_t *count)
{
    size_t left = self->size - self->pos;
    if (left == 0)
        return VD_EPROTO;
    const uint8_t *p = self->data + self->pos;
    size_t hdr = 1;
    uint64_t n;
    if ((p[0] & 0xf0) == fix)
        n = p[0] & 0x0f;
    else if (p[0] != marker16 && p[0] != marker32)
        return VD_EPROTO;
    else if (!s_length(p, left, p[0] == marker16 ? 2 : 4, &hdr, &n))
        return VD_EPROTO;
    //  n < 2^32 and min_bytes <= 2, so the product cannot overflow
    if (min_bytes * n > left - hdr)
        return VD_EPROTO;
    self->pos += hdr;
    *count = (uint32_t)n;
    return VD_OK;
}

int
vdp_mp_read_map(vdp_mp_t *self, uint32_t *count)
{
    return s_read_header(self, 0x80, 0xde, 0xdf, 2, count); // a key and a value per entry
}

int
vdp_mp_read_array(vdp_mp_t *self, uint32_t *count)
{
    return s_read_header(self, 0x90, 0xdc, 0xdd, 1, count);
}

int
vdp_mp_read_str(vdp_mp_t *self, const char **str, uint32_t *len)
{
    size_t left = self->size - self->pos;
    if (left == 0)
        return VD_EPROTO;
    const uint8_t *p = self->data + self->pos;
    size_t hdr = 1;
    uint64_t n;
    if ((p[0] & 0xe0) == 0xa0)
        n = p[0] & 0x1f;
    else if (p[0] < 0xd9 || p[0] > 0xdb)
        return VD_EPROTO;
    else if (!s_length(p, left, (size_t)1 << (p[0] - 0xd9), &hdr, &n))
        return VD_EPROTO;
    if (n > left - hdr)
        return VD_EPROTO;
    *str = (const char *)p + hdr;
    *len = (uint32_t)n;
    self->pos += hdr + (size_t)n;
    return VD_OK;
}

int
vdp_mp_read_bin(vdp_mp_t *self, const uint8_t **bin, uint32_t *len)
{
    size_t left = self->size - self->pos;
    if (left == 0)
        return VD_EPROTO;
    const uint8_t *p = self->data + self->pos;
    size_t hdr;
    uint64_t n;
    if (p[0] < 0xc4 || p[0] > 0xc6)
        return VD_EPROTO;
    if (!s_length(p, left, (size_t)1 << (p[0] - 0xc4), &hdr, &n))
        return VD_EPROTO;
    if (n > left - hdr)
        return VD_EPROTO;
    *bin = p + hdr;
    *len = (uint32_t)n;
    self->pos += hdr + (size_t)n;
    return VD_OK;
}

/*  Reads any integer: *neg tells whether the value is negative, *bits its value (if !neg) or
    its two's complement bits (if neg). Consumes nothing on error.  */
static int
s_read_integer(vdp_mp_t *self, bool *neg, uint64_t *bits)
{
    size_t left = self->size - self->pos;
    if (left == 0)
        return VD_EPROTO;
    const uint8_t *p = self->data + self->pos;
    uint8_t b = p[0];
    if (b <= 0x7f || b >= 0xe0) {
        *neg = b >= 0xe0;
        *bits = *neg ? (uint64_t)(int64_t)(int8_t)b : b;
        self->pos += 1;
        return VD_OK;
    }
    size_t width;
    bool is_signed;
    if (b >= 0xcc && b <= 0xcf) {
        width = (size_t)1 << (b - 0xcc);
        is_signed = false;
    } else if (b >= 0xd0 && b <= 0xd3) {
        width = (size_t)1 << (b - 0xd0);
        is_signed = true;
    } else {
        return VD_EPROTO;
    }
    if (left < 1 + width)
        return VD_EPROTO;
    uint64_t v = s_be(p + 1, width);
    if (is_signed && width < 8 && (v >> (8 * width - 1)) & 1)
        v |= ~(uint64_t)0 << (8 * width); // sign-extend
    *neg = is_signed && (v >> 63) & 1;
    *bits = v;
    self->pos += 1 + width;
    return VD_OK;
}

int
vdp_mp_read_uint(vdp_mp_t *self, uint64_t *value)
{
    size_t start = self->pos;
    bool neg;
    uint64_t bits;
    if (s_read_integer(self, &neg, &bits) != VD_OK)
        return VD_EPROTO;
    if (neg) {
        self->pos = start;
        return VD_EPROTO;
    }
    *value = bits;
    return VD_OK;
}

int
vdp_mp_read_int(vdp_mp_t *self, int64_t *value)
{
    size_t start = self->pos;
    bool neg;
    uint64_t bits;
    if (s_read_integer(self, &neg, &bits) != VD_OK)
        return VD_EPROTO;
    if (!neg && bits > (uint64_t)INT64_MAX) {
        self->pos = start;
        return VD_EPROTO;
    }
    //  Two's complement bits to int64_t without implementation-defined conversion
    *value = neg ? -(int64_t)(~bits) - 1 : (int64_t)bits;
    return VD_OK;
}

int
vdp_mp_read_bool(vdp_mp_t *self, bool *value)
{
    if (self->pos >= self->size)
        return VD_EPROTO;
    uint8_t b = self->data[self->pos];
    if (b != 0xc2 && b != 0xc3)
        return VD_EPROTO;
    *value = b == 0xc3;
    self->pos++;
    return VD_OK;
}

int
vdp_mp_read_nil(vdp_mp_t *self)
{
    if (self->pos >= self->size || self->data[self->pos] != 0xc0)
        return VD_EPROTO;
    self->pos++;
    return VD_OK;
}

//  Skips one value; on error the position is left anywhere (vdp_mp_skip restores it).
static int
s_skip(vdp_mp_t *self, unsigned depth)
{
    size_t left = self->size - self->pos;
    if (left == 0)
        return VD_EPROTO;
    const uint8_t *p = self->data + self->pos;
    uint8_t b = p[0];
    size_t hdr = 1;
    uint64_t n = 0;     // bytes after the header (scalars, str, bin, ext)
    uint64_t items = 0; // elements (arrays) or pairs (maps)
    bool map = false;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        self->pos++;
        return VD_OK;
    }
    if (b <= 0x8f) {
        items = b & 0x0f;
        map = true;
    } else if (b <= 0x9f) {
        items = b & 0x0f;
    } else if (b <= 0xbf) {
        n = b & 0x1f;
    } else if (b >= 0xc4 && b <= 0xc6) { // bin 8, 16, 32
        if (!s_length(p, left, (size_t)1 << (b - 0xc4), &hdr, &n))
            return VD_EPROTO;
    } else if (b >= 0xc7 && b <= 0xc9) { // ext 8, 16, 32: length, type byte, data
        if (!s_length(p, left, (size_t)1 << (b - 0xc7), &hdr, &n))
            return VD_EPROTO;
        n += 1;
    } else if (b == 0xca || b == 0xcb) { // float 32, 64
        n = b == 0xca ? 4 : 8;
    } else if (b >= 0xcc && b <= 0xcf) { // uint 8..64
        n = (uint64_t)1 << (b - 0xcc);
    } else if (b >= 0xd0 && b <= 0xd3) { // int 8..64
        n = (uint64_t)1 << (b - 0xd0);
    } else if (b >= 0xd4 && b <= 0xd8) { // fixext 1..16: type byte, data
        n = 1 + ((uint64_t)1 << (b - 0xd4));
    } else if (b >= 0xd9 && b <= 0xdb) { // str 8, 16, 32
        if (!s_length(p, left, (size_t)1 << (b - 0xd9), &hdr, &n))
            return VD_EPROTO;
    } else if (b == 0xdc || b == 0xdd) { // array 16, 32
        if (!s_length(p, left, b == 0xdc ? 2 : 4, &hdr, &items))
            return VD_EPROTO;
    } else if (b == 0xde || b == 0xdf) { // map 16, 32
        if (!s_length(p, left, b == 0xde ? 2 : 4, &hdr, &items))
            return VD_EPROTO;
        map = true;
    } else {
        return VD_EPROTO; // 0xc1
    }
    bool container = (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
    if (!container) {
        if (n > left - hdr)
            return VD_EPROTO;
        self->pos += hdr + (size_t)n;
        return VD_OK;
    }
    if (depth == 0)
        return VD_EPROTO;
    uint64_t elements = map ? 2 * items : items;
    if (elements > left - hdr)
        return VD_EPROTO;
    if (map && items > VDP_MAX_MAP_KEYS)
        return VD_ELIMIT;
    self->pos += hdr;
    for (uint64_t i = 0; i < elements; i++) {
        int rc = s_skip(self, depth - 1);
        if (rc != VD_OK)
            return rc;
    }
    return VD_OK;
}

int
vdp_mp_skip(vdp_mp_t *self, unsigned depth)
{
    size_t start = self->pos;
    int rc = s_skip(self, depth);
    if (rc != VD_OK)
        self->pos = start;
    return rc;
}

int
vdp_mp_grow(uint8_t **data, size_t *capacity, size_t size, size_t need, size_t min_capacity)
{
    assert(size <= *capacity);
    assert(min_capacity > 0);
    if (need <= *capacity - size)
        return VD_OK;
    if (need > SIZE_MAX / 2 - size)
        return VD_ENOMEM;
    size_t cap = *capacity ? *capacity : min_capacity;
    while (cap - size < need)
        cap *= 2;
    uint8_t *grown = realloc(*data, cap);
    if (!grown)
        return VD_ENOMEM;
    *data = grown;
    *capacity = cap;
    return VD_OK;
}
