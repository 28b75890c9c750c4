// The three primitives SRTP and SRTCP need (RFC 3711, RFC 7714), on OpenSSL's EVP (libcrypto, AES-NI where the CPU
// has it): AES-128 in counter mode, HMAC-SHA1, and AES-128-GCM. Each cipher is keyed once, when the DTLS handshake
// has given the session keys, and used for every packet after: no lookup or key schedule on the packet path.
// The SRTP framing itself (the IVs, the indices, the tags' places, the replay windows) is Swift, in the SRTP module.
//
// A cipher is not thread-safe: one event loop owns it, as it owns the SRTP context around it.
#ifndef CSRTPCIPHER_H
#define CSRTPCIPHER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ls_srtp_ctr ls_srtp_ctr;
typedef struct ls_srtp_hmac ls_srtp_hmac;
typedef struct ls_srtp_gcm ls_srtp_gcm;

// AES-128 in counter mode under a 16-byte key; NULL if OpenSSL failed.
ls_srtp_ctr *ls_srtp_ctr_new(const uint8_t key[16]);
void ls_srtp_ctr_free(ls_srtp_ctr *ctr);
// `out` = `in` XOR the keystream E(k, iv) || E(k, iv + 1) || ... (RFC 3711 4.1.1: the block is a 128-bit big-endian
// counter). `in` and `out` may be the same buffer, and must not otherwise overlap. Returns 1, or 0 if OpenSSL failed.
int ls_srtp_ctr_xor(ls_srtp_ctr *ctr, const uint8_t iv[16], const uint8_t *in, size_t len, uint8_t *out);

// HMAC-SHA1 under a key of `key_len` bytes (SRTP's 20); NULL if OpenSSL failed.
ls_srtp_hmac *ls_srtp_hmac_new(const uint8_t *key, size_t key_len);
void ls_srtp_hmac_free(ls_srtp_hmac *hmac);
// The 20-byte HMAC of `a` followed by `b` (`b` may be NULL when `b_len` is 0) into `out`. Returns 1, or 0.
int ls_srtp_hmac_sha1(ls_srtp_hmac *hmac, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t out[20]);

// AES-128-GCM under a 16-byte key, 12-byte IVs and 16-byte tags; NULL if OpenSSL failed.
ls_srtp_gcm *ls_srtp_gcm_new(const uint8_t key[16]);
void ls_srtp_gcm_free(ls_srtp_gcm *gcm);
// Encrypts `len` bytes of `in` into `out` (may be the same buffer) and writes the tag, authenticating the associated
// data `aad` then `aad2` (either may be empty; SRTCP's trails the packet). Returns 1, or 0 if OpenSSL failed.
int ls_srtp_gcm_seal(ls_srtp_gcm *gcm, const uint8_t iv[12], const uint8_t *aad, size_t aad_len, const uint8_t *aad2,
                     size_t aad2_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16]);
// Checks `tag` and decrypts. Returns 1 if the tag is right (then `out` holds the plaintext), 0 if not (then the
// `len` bytes at `out` are zeros).
int ls_srtp_gcm_open(ls_srtp_gcm *gcm, const uint8_t iv[12], const uint8_t *aad, size_t aad_len, const uint8_t *aad2,
                     size_t aad2_len, const uint8_t *in, size_t len, const uint8_t tag[16], uint8_t *out);

#endif
