#include "CDTLS.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ls_tls_context {
    SSL_CTX *ssl_ctx;
};

struct ls_tls {
    SSL *ssl;
    BIO *rbio;  // from the peer, written by ls_tls_feed
    BIO *wbio;  // to the peer, drained by ls_tls_take_output
    int failed;
    char error[256];
};

static void tls_error(char *out, size_t cap, const char *what) {
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    snprintf(out, cap, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

ls_tls_context *ls_tls_context_new(const char *chain_file, const char *key_file, char *err, size_t errlen) {
    ls_tls_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx->ssl_ctx) {
        tls_error(err, errlen, "SSL_CTX_new");
        free(ctx);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
    // No session cache or tickets: a TURN connection lives as long as its allocation.
    SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(ctx->ssl_ctx, 0);  // TLS 1.3 sends tickets despite SSL_OP_NO_TICKET otherwise
    const char *what = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, chain_file) != 1) what = "cannot read the certificate chain";
    else if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1) what = "cannot read the private key";
    else if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) what = "the key does not match the certificate";
    if (what) {
        tls_error(err, errlen, what);
        SSL_CTX_free(ctx->ssl_ctx);
        free(ctx);
        return NULL;
    }
    return ctx;
}

void ls_tls_context_free(ls_tls_context *ctx) {
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

ls_tls *ls_tls_new(ls_tls_context *ctx) {
    ls_tls *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    // An empty read BIO means "wait for more", not end of file.
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);  // the SSL owns both now
    SSL_set_accept_state(t->ssl);
    return t;
}

void ls_tls_free(ls_tls *t) {
    if (!t) return;
    SSL_free(t->ssl);
    free(t);
}

int ls_tls_feed(ls_tls *t, const uint8_t *data, size_t len) {
    if (len == 0) return 1;
    return BIO_write(t->rbio, data, (int)len) == (int)len;
}

int ls_tls_established(ls_tls *t) { return SSL_is_init_finished(t->ssl); }

int ls_tls_read(ls_tls *t, uint8_t *out, size_t cap) {
    if (t->failed) return LS_DTLS_FAILED;
    ERR_clear_error();
    if (!SSL_is_init_finished(t->ssl)) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
            tls_error(t->error, sizeof t->error, "handshake");
            t->failed = 1;
            return LS_DTLS_FAILED;
        }
    }
    int n = SSL_read(t->ssl, out, (int)cap);
    if (n > 0) return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    if (e == SSL_ERROR_ZERO_RETURN) return LS_DTLS_CLOSED;
    tls_error(t->error, sizeof t->error, "read");
    t->failed = 1;
    return LS_DTLS_FAILED;
}

int ls_tls_write(ls_tls *t, const uint8_t *data, size_t len) {
    if (t->failed || !SSL_is_init_finished(t->ssl)) return LS_DTLS_FAILED;
    ERR_clear_error();
    int n = SSL_write(t->ssl, data, (int)len);
    if (n == (int)len) return n;
    tls_error(t->error, sizeof t->error, "write");
    t->failed = 1;
    return LS_DTLS_FAILED;
}

int ls_tls_take_output(ls_tls *t, uint8_t *out, size_t cap) {
    int n = BIO_read(t->wbio, out, (int)cap);
    return n > 0 ? n : 0;
}

void ls_tls_shutdown(ls_tls *t) {
    if (!t->failed && SSL_is_init_finished(t->ssl)) SSL_shutdown(t->ssl);
    ERR_clear_error();  // the queue is the thread's, shared with DTLS
}

const char *ls_tls_version(ls_tls *t) { return SSL_get_version(t->ssl); }

const char *ls_tls_error(ls_tls *t) { return t->error; }
