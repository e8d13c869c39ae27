/*  vdp_limits: every cap a peer's declared size or count is checked against. One place, so the
    spec (PROTOCOL.md §7) and both sides agree. Changing a cap downward is a protocol change.  */

#ifndef VDP_LIMITS_H_INCLUDED
#define VDP_LIMITS_H_INCLUDED

#define VDP_VERSION 1 // wire protocol version spoken in hello/welcome

#define VDP_MAX_FRAME           (4u * 1024u * 1024u) // one ZeroMQ message (a batch); ZMQ_MAXMSGSIZE
#define VDP_MAX_BODY            (1024u * 1024u)      // one envelope body
#define VDP_MAX_BATCH           1024u                // commands in one frame
#define VDP_MAX_DEPTH           4u                   // msgpack nesting (command > env > refs > ref)
#define VDP_MAX_MAP_KEYS        64u                  // keys in any map, unknown keys included
#define VDP_MAX_STR             1024u                // any string we do not cap more tightly
#define VDP_MAX_TOPIC           128u                 // topic or pattern, bytes
#define VDP_MAX_SEGMENTS        8u                   // segments in a topic or pattern
#define VDP_MAX_SEGMENT         48u                  // bytes in one segment
#define VDP_MAX_ORG             64u                  // org id, e.g. "comune:i726"
#define VDP_MAX_NAME            128u                 // display name of an agency
#define VDP_MAX_LABEL           32u                  // key label, e.g. "siem"
#define VDP_MAX_TO              32u                  // recipients of a directed message
#define VDP_MAX_REFS            16u                  // references
#define VDP_MAX_VIA             8u                   // relays a message went through
#define VDP_MAX_JUR             4u                   // jurisdictions of one agency
#define VDP_MAX_SHORT           64u                  // category, ctype, incident, agent, role, ...
#define VDP_MAX_LANG            16u                  // lang tag
#define VDP_MAX_REASON          255u                 // error reason text
#define VDP_MAX_SIG             512u                 // sig field (version 1 needs up to 269)
#define VDP_ID_LEN              36u                  // canonical UUID text
#define VDP_KEY_Z85_LEN         40u                  // Z85 of a 32-byte key
#define VDP_SIGN_SECRET_Z85_LEN 80u                  // Z85 of a 64-byte Ed25519 secret key
#define VDP_KEY_BYTES           32u                  // CURVE / Ed25519 public key
#define VDP_MAX_DURABLE         64u                  // durable subscription name, bytes
#define VDP_MAX_CREDIT          65536u               // deliveries a session may have granted
#define VDP_DEFAULT_CREDIT      1024u                // granted by a hello that names none

/*  A sender closes a batch once it holds about this much (a single larger command still goes,
    alone, up to VDP_MAX_FRAME). Past it CurveZMQ's per-message cost is already spread thin, and
    buffers this size stay below the C allocator's mmap threshold, so they are reused instead
    of being mapped and faulted in page by page for every batch. Not a protocol limit.  */
#define VDP_BATCH_BYTES (64u * 1024u)

#define VDP_MIN_HEARTBEAT_MS 100u
#define VDP_MAX_HEARTBEAT_MS 60000u

#endif
