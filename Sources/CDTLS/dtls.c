#include "CDTLS.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ls_dtls_context {
    SSL_CTX *ssl_ctx;
    X509 *cert;
    EVP_PKEY *key;
};

// Outgoing datagrams, each exactly one BIO write from OpenSSL (one flight packet), so that a flight split for
// the MTU is never glued back together.
typedef struct datagram {
    struct datagram *next;
    size_t len;
    uint8_t bytes[];
} datagram;

enum { MAX_QUEUED = 64 };

struct ls_dtls {
    SSL *ssl;
    BIO *rbio;
    BIO *wbio;
    datagram *head;
    datagram *tail;
    int queued;
    int mtu;
    int state;
    char error[256];
};

static void set_error(ls_dtls *d, const char *what) {
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    snprintf(d->error, sizeof d->error, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

// MARK: - The datagram BIO

static int dgram_write(BIO *b, const char *data, int len) {
    ls_dtls *d = BIO_get_data(b);
    if (len <= 0) return 0;
    if (d->queued >= MAX_QUEUED) return len;  // the peer is not reading; retransmission covers the loss
    datagram *g = malloc(sizeof *g + (size_t)len);
    if (!g) return -1;
    g->next = NULL;
    g->len = (size_t)len;
    memcpy(g->bytes, data, (size_t)len);
    if (d->tail) d->tail->next = g; else d->head = g;
    d->tail = g;
    d->queued++;
    return len;
}

static long dgram_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num; (void)ptr;
    ls_dtls *d = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU: return d ? d->mtu : 1200;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: return 0;  // the MTU given is already what a datagram may carry
    case BIO_CTRL_WPENDING: case BIO_CTRL_PENDING: return 0;
    default: return 0;
    }
}

static int dgram_create(BIO *b) { BIO_set_init(b, 1); return 1; }

static BIO_METHOD *dgram_method(void) {
    static BIO_METHOD *m;
    if (!m) {
        BIO_METHOD *n = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "liveswarm datagram queue");
        BIO_meth_set_write(n, dgram_write);
        BIO_meth_set_ctrl(n, dgram_ctrl);
        BIO_meth_set_create(n, dgram_create);
        m = n;
    }
    return m;
}

// MARK: - Context

static int accept_any_certificate(int ok, X509_STORE_CTX *store) {
    // WebRTC certificates are self-signed: what authenticates the peer is the fingerprint from its SDP, checked
    // by the caller after the handshake (RFC 8827 6.5).
    (void)ok; (void)store;
    return 1;
}

static int fail(char *err, size_t errlen, const char *what) {
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    if (err && errlen) snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
    return 0;
}

static int generate(ls_dtls_context *c, int valid_days, char *err, size_t errlen) {
    c->key = EVP_EC_gen("P-256");
    if (!c->key) return fail(err, errlen, "ECDSA P-256 key generation failed");
    c->cert = X509_new();
    if (!c->cert) return fail(err, errlen, "X509_new failed");
    uint8_t serial[8];
    RAND_bytes(serial, sizeof serial);
    uint64_t s = 0;
    for (int i = 0; i < 8; i++) s = s << 8 | serial[i];
    X509_set_version(c->cert, 2);
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(c->cert), s >> 1);
    X509_gmtime_adj(X509_getm_notBefore(c->cert), -86400);  // a peer with a slow clock still accepts it
    X509_gmtime_adj(X509_getm_notAfter(c->cert), (long)valid_days * 86400);
    X509_set_pubkey(c->cert, c->key);
    X509_NAME *name = X509_get_subject_name(c->cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"LiveSwarm", -1, -1, 0);
    X509_set_issuer_name(c->cert, name);
    if (!X509_sign(c->cert, c->key, EVP_sha256())) return fail(err, errlen, "signing the certificate failed");
    return 1;
}

static int load(ls_dtls_context *c, const char *cert_pem, const char *key_pem, char *err, size_t errlen) {
    BIO *cb = BIO_new_mem_buf(cert_pem, -1);
    c->cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    BIO_free(cb);
    if (!c->cert) return fail(err, errlen, "the certificate is not PEM X.509");
    BIO *kb = BIO_new_mem_buf(key_pem, -1);
    c->key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    BIO_free(kb);
    if (!c->key) return fail(err, errlen, "the key is not an unencrypted PEM private key");
    if (!X509_check_private_key(c->cert, c->key)) return fail(err, errlen, "the key does not belong to the certificate");
    // The cipher suites offered are ECDHE-ECDSA ones (what browsers expect of WebRTC): the key must be P-256.
    char group[64] = {0};
    size_t glen = 0;
    if (!EVP_PKEY_is_a(c->key, "EC") || !EVP_PKEY_get_group_name(c->key, group, sizeof group, &glen) || strcmp(group, "prime256v1") != 0) {
        return fail(err, errlen, "the key must be ECDSA P-256 (prime256v1)");
    }
    return 1;
}

ls_dtls_context *ls_dtls_context_new(const char *cert_pem, const char *key_pem, int valid_days, char *err, size_t errlen) {
    ls_dtls_context *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int ok = cert_pem && key_pem ? load(c, cert_pem, key_pem, err, errlen) : generate(c, valid_days, err, errlen);
    if (ok) {
        c->ssl_ctx = SSL_CTX_new(DTLS_method());
        ok = c->ssl_ctx != NULL || fail(err, errlen, "SSL_CTX_new failed");
    }
    if (ok) {
        SSL_CTX *x = c->ssl_ctx;
        // DTLS 1.2 (RFC 8827 requires it at least); OpenSSL 3.0 has no DTLS 1.3.
        SSL_CTX_set_min_proto_version(x, DTLS1_2_VERSION);
        ok = SSL_CTX_use_certificate(x, c->cert) == 1 && SSL_CTX_use_PrivateKey(x, c->key) == 1;
        if (!ok) fail(err, errlen, "the certificate or key was refused");
    }
    if (ok) {
        SSL_CTX *x = c->ssl_ctx;
        SSL_CTX_set_cipher_list(x, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA");
        SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_certificate);
        SSL_CTX_set_read_ahead(x, 1);
        // Unusually, 0 means success here.
        if (SSL_CTX_set_tlsext_use_srtp(x, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") != 0) {
            ok = fail(err, errlen, "use_srtp profiles refused");
        }
    }
    if (!ok) {
        ls_dtls_context_free(c);
        return NULL;
    }
    return c;
}

void ls_dtls_context_free(ls_dtls_context *c) {
    if (!c) return;
    SSL_CTX_free(c->ssl_ctx);
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    free(c);
}

int ls_dtls_context_fingerprint(ls_dtls_context *c, uint8_t out[32]) {
    unsigned int n = 32;
    return X509_digest(c->cert, EVP_sha256(), out, &n) == 1 && n == 32;
}

int ls_dtls_context_pem(ls_dtls_context *c, int key, char *out, size_t cap) {
    BIO *b = BIO_new(BIO_s_mem());
    int ok = key ? PEM_write_bio_PrivateKey(b, c->key, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(b, c->cert);
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    int result;
    if (n <= 0) result = 0;
    else if ((size_t)n >= cap) result = -(int)(n + 1);
    else {
        memcpy(out, data, (size_t)n);
        out[n] = 0;
        result = (int)n;
    }
    BIO_free(b);
    return result;
}

// MARK: - Association

ls_dtls *ls_dtls_new(ls_dtls_context *c, int server, int mtu) {
    ls_dtls *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->mtu = mtu > 0 ? mtu : 1200;
    d->ssl = SSL_new(c->ssl_ctx);
    d->rbio = BIO_new(BIO_s_mem());
    d->wbio = BIO_new(dgram_method());
    if (!d->ssl || !d->rbio || !d->wbio) {
        SSL_free(d->ssl);
        BIO_free(d->rbio);
        BIO_free(d->wbio);
        free(d);
        return NULL;
    }
    BIO_set_mem_eof_return(d->rbio, -1);  // an empty read means "try again", not end of file
    BIO_set_data(d->wbio, d);
    SSL_set_bio(d->ssl, d->rbio, d->wbio);
    SSL_set_options(d->ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(d->ssl, d->mtu);
    DTLS_set_link_mtu(d->ssl, d->mtu);
    if (server) SSL_set_accept_state(d->ssl); else SSL_set_connect_state(d->ssl);
    d->state = LS_DTLS_HANDSHAKING;
    return d;
}

int ls_dtls_set_srtp_profiles(ls_dtls *d, const char *profiles) {
    // Unusually, 0 means success here.
    return SSL_set_tlsext_use_srtp(d->ssl, profiles) == 0;
}

void ls_dtls_free(ls_dtls *d) {
    if (!d) return;
    SSL_free(d->ssl);  // frees both BIOs
    datagram *g = d->head;
    while (g) {
        datagram *n = g->next;
        free(g);
        g = n;
    }
    free(d);
}

int ls_dtls_receive(ls_dtls *d, const uint8_t *data, size_t len) {
    if (len == 0 || len > 65535) return 0;
    return BIO_write(d->rbio, data, (int)len) == (int)len;
}

static int step_result(ls_dtls *d, int r, const char *what) {
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return LS_DTLS_HANDSHAKING;
    if (e == SSL_ERROR_ZERO_RETURN) return LS_DTLS_CLOSED;
    set_error(d, what);
    d->state = LS_DTLS_FAILED;
    return LS_DTLS_FAILED;
}

int ls_dtls_handshake(ls_dtls *d) {
    if (d->state != LS_DTLS_HANDSHAKING) return d->state;
    int r = SSL_do_handshake(d->ssl);
    if (r == 1) {
        d->state = LS_DTLS_CONNECTED;
        return d->state;
    }
    return step_result(d, r, "DTLS handshake failed");
}

int ls_dtls_read(ls_dtls *d, uint8_t *out, size_t cap) {
    if (d->state == LS_DTLS_FAILED || d->state == LS_DTLS_CLOSED) return d->state;
    int r = SSL_read(d->ssl, out, (int)(cap > 0x7fffffff ? 0x7fffffff : cap));
    if (r > 0) return r;
    int s = step_result(d, r, "DTLS read failed");
    if (s == LS_DTLS_CLOSED) d->state = LS_DTLS_CLOSED;
    return s == LS_DTLS_HANDSHAKING ? 0 : s;
}

int ls_dtls_write(ls_dtls *d, const uint8_t *data, size_t len) {
    if (d->state != LS_DTLS_CONNECTED) return -1;
    int r = SSL_write(d->ssl, data, (int)len);
    return r > 0 ? r : -1;
}

void ls_dtls_shutdown(ls_dtls *d) {
    if (d->state == LS_DTLS_CONNECTED) SSL_shutdown(d->ssl);
    d->state = LS_DTLS_CLOSED;
}

int ls_dtls_next_datagram(ls_dtls *d, uint8_t *out, size_t cap) {
    datagram *g = d->head;
    if (!g) return 0;
    if (g->len > cap) return -(int)g->len;
    memcpy(out, g->bytes, g->len);
    int n = (int)g->len;
    d->head = g->next;
    if (!d->head) d->tail = NULL;
    d->queued--;
    free(g);
    return n;
}

long ls_dtls_timeout_ms(ls_dtls *d) {
    struct timeval tv;
    if (DTLSv1_get_timeout(d->ssl, &tv) != 1) return -1;
    return (long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int ls_dtls_handle_timeout(ls_dtls *d) {
    if (d->state != LS_DTLS_HANDSHAKING) return d->state;
    if (DTLSv1_handle_timeout(d->ssl) < 0) {
        set_error(d, "DTLS handshake timed out");
        d->state = LS_DTLS_FAILED;
    }
    return d->state;
}

int ls_dtls_peer_fingerprint(ls_dtls *d, uint8_t out[32]) {
    X509 *peer = SSL_get1_peer_certificate(d->ssl);
    if (!peer) return -1;
    unsigned int n = 32;
    int ok = X509_digest(peer, EVP_sha256(), out, &n) == 1 && n == 32;
    X509_free(peer);
    return ok ? 1 : -1;
}

int ls_dtls_srtp_profile(ls_dtls *d) {
    SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(d->ssl);
    return p ? (int)p->id : 0;
}

int ls_dtls_srtp_keying_material(ls_dtls *d, uint8_t *out, size_t len) {
    static const char label[] = "EXTRACTOR-dtls_srtp";
    return SSL_export_keying_material(d->ssl, out, len, label, sizeof label - 1, NULL, 0, 0) == 1;
}

const char *ls_dtls_version(ls_dtls *d) { return SSL_get_version(d->ssl); }

const char *ls_dtls_cipher(ls_dtls *d) {
    const char *c = SSL_get_cipher_name(d->ssl);
    return c ? c : "";
}

const char *ls_dtls_error(ls_dtls *d) { return d->error; }
