// OpenSSL DTLS for LiveSwarm, wrapped once (as mediasoup's DepOpenSSL does): Swift cannot call OpenSSL's macros
// and variadic functions, and a datagram-preserving BIO is easier in C. Swift sees only these opaque types.
#ifndef CDTLS_H
#define CDTLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ls_dtls_context ls_dtls_context;
typedef struct ls_dtls ls_dtls;

enum {
    LS_DTLS_SRTP_AES128_CM_SHA1_80 = 0x0001,
    LS_DTLS_SRTP_AEAD_AES_128_GCM = 0x0007,
};

enum {
    LS_DTLS_HANDSHAKING = 0,
    LS_DTLS_CONNECTED = 1,
    LS_DTLS_FAILED = -1,
    LS_DTLS_CLOSED = -2,
};

// A certificate and key with the SSL_CTX around them. `cert_pem`/`key_pem` NULL: a fresh ECDSA P-256 key and a
// self-signed certificate valid for `valid_days`. NULL on failure, with the reason in `err`.
ls_dtls_context *ls_dtls_context_new(const char *cert_pem, const char *key_pem, int valid_days, char *err, size_t errlen);
void ls_dtls_context_free(ls_dtls_context *ctx);
// SHA-256 of the certificate's DER (32 bytes), what `a=fingerprint:sha-256` carries.
int ls_dtls_context_fingerprint(ls_dtls_context *ctx, uint8_t out[32]);
// The certificate and key as PEM, to save them. Returns the length written, or -needed when `cap` is too small.
int ls_dtls_context_pem(ls_dtls_context *ctx, int key, char *out, size_t cap);

// One DTLS association. `server`: 1 waits for a ClientHello (setup:passive), 0 sends one (setup:active).
ls_dtls *ls_dtls_new(ls_dtls_context *ctx, int server, int mtu);
void ls_dtls_free(ls_dtls *d);
// Narrows the SRTP profiles this association offers or accepts (OpenSSL's names, colon-separated) from the
// context's (AES-GCM, then AES-CM). Returns 1, or 0 if OpenSSL refused the list.
int ls_dtls_set_srtp_profiles(ls_dtls *d, const char *profiles);
// One datagram from the peer. Then call ls_dtls_handshake or ls_dtls_read.
int ls_dtls_receive(ls_dtls *d, const uint8_t *data, size_t len);
// Advances the handshake: LS_DTLS_HANDSHAKING, LS_DTLS_CONNECTED or LS_DTLS_FAILED.
int ls_dtls_handshake(ls_dtls *d);
// Application data after the handshake: bytes read, 0 when none is pending, LS_DTLS_CLOSED on close_notify,
// LS_DTLS_FAILED on a fatal error.
int ls_dtls_read(ls_dtls *d, uint8_t *out, size_t cap);
int ls_dtls_write(ls_dtls *d, const uint8_t *data, size_t len);
// Sends close_notify.
void ls_dtls_shutdown(ls_dtls *d);
// The next datagram to send: its length, 0 when none is queued, -needed when `cap` is too small.
int ls_dtls_next_datagram(ls_dtls *d, uint8_t *out, size_t cap);
// Milliseconds until the retransmission timer fires, -1 when no timer runs.
long ls_dtls_timeout_ms(ls_dtls *d);
// Retransmits when the timer fired; LS_DTLS_FAILED when the handshake gave up.
int ls_dtls_handle_timeout(ls_dtls *d);
// After the handshake: the peer certificate's SHA-256 (32 bytes); -1 without a peer certificate.
int ls_dtls_peer_fingerprint(ls_dtls *d, uint8_t out[32]);
// The negotiated SRTP protection profile (LS_DTLS_SRTP_*), 0 when none.
int ls_dtls_srtp_profile(ls_dtls *d);
// RFC 5764 4.2: `len` bytes exported with the label "EXTRACTOR-dtls_srtp". 1 on success.
int ls_dtls_srtp_keying_material(ls_dtls *d, uint8_t *out, size_t len);
// The protocol and cipher names ("DTLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256").
const char *ls_dtls_version(ls_dtls *d);
const char *ls_dtls_cipher(ls_dtls *d);
// The last error, "" when none.
const char *ls_dtls_error(ls_dtls *d);

// MARK: - TLS over a byte stream (TURN over TLS, RFC 8656 3.1), through memory BIOs: the caller moves bytes.

typedef struct ls_tls_context ls_tls_context;
typedef struct ls_tls ls_tls;

// A TLS server context (TLS 1.2 and 1.3) with the certificate chain and key of two PEM files. NULL on failure,
// with the reason in `err`.
ls_tls_context *ls_tls_context_new(const char *chain_file, const char *key_file, char *err, size_t errlen);
void ls_tls_context_free(ls_tls_context *ctx);

// One server connection.
ls_tls *ls_tls_new(ls_tls_context *ctx);
void ls_tls_free(ls_tls *t);
// Bytes from the peer. 1, or 0 when they could not be buffered.
int ls_tls_feed(ls_tls *t, const uint8_t *data, size_t len);
// Plaintext after the handshake (advancing it first): bytes read, 0 when none is pending yet, LS_DTLS_CLOSED on
// close_notify, LS_DTLS_FAILED on a fatal error (ls_tls_error says which).
int ls_tls_read(ls_tls *t, uint8_t *out, size_t cap);
// Whether the handshake is done.
int ls_tls_established(ls_tls *t);
// Plaintext to the peer: `len`, or LS_DTLS_FAILED.
int ls_tls_write(ls_tls *t, const uint8_t *data, size_t len);
// Bytes to send to the peer (handshake records, ciphertext, alerts): the length written, 0 when none.
int ls_tls_take_output(ls_tls *t, uint8_t *out, size_t cap);
// Sends close_notify (then take the output).
void ls_tls_shutdown(ls_tls *t);
const char *ls_tls_version(ls_tls *t);
const char *ls_tls_error(ls_tls *t);

#endif
