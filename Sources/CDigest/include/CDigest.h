// The few digests LiveSwarm's wire codecs need, from OpenSSL's libcrypto (already linked for DTLS): MD5 (TURN's
// long-term key), SHA-1 (the P2P info hash), SHA-256 (CMAF chunk hashes), and HMAC over SHA-1 and SHA-256 (STUN's
// MESSAGE-INTEGRITY, the RTMP handshake). One-shot calls only; safe from any thread; nothing is kept.
#ifndef CDIGEST_H
#define CDIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LS_MD5 = 0, LS_SHA1 = 1, LS_SHA256 = 2 } ls_digest_algorithm;

// The digest of `len` bytes at `data` into `out` (room for 32 bytes). Returns its length (16, 20 or 32), or 0 if
// OpenSSL failed.
size_t ls_digest(ls_digest_algorithm algorithm, const void *data, size_t len, uint8_t *out);

// HMAC (RFC 2104) of `len` bytes at `data` under `key`, into `out` (room for 32 bytes). SHA-1 and SHA-256 only.
// Returns its length (20 or 32), or 0 if OpenSSL failed or the algorithm is MD5.
size_t ls_hmac(ls_digest_algorithm algorithm, const void *key, size_t key_len, const void *data, size_t len, uint8_t *out);

#endif
