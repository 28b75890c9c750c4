#include "CSRTPCipher.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>

// OpenSSL 3 looks an algorithm up by name on every implicit fetch: fetch each once.
static EVP_CIPHER *aes_ctr, *aes_gcm;
static EVP_MAC *hmac_mac;
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

static void fetch(void) {
    aes_ctr = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
    aes_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

struct ls_srtp_ctr { EVP_CIPHER_CTX *ctx; };
struct ls_srtp_hmac { EVP_MAC_CTX *ctx; };
struct ls_srtp_gcm { EVP_CIPHER_CTX *ctx; };

ls_srtp_ctr *ls_srtp_ctr_new(const uint8_t key[16]) {
    pthread_once(&fetched, fetch);
    if (!aes_ctr) return NULL;
    ls_srtp_ctr *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ctx = EVP_CIPHER_CTX_new();
    if (!c->ctx || !EVP_EncryptInit_ex2(c->ctx, aes_ctr, key, NULL, NULL)) {
        ls_srtp_ctr_free(c);
        return NULL;
    }
    return c;
}

void ls_srtp_ctr_free(ls_srtp_ctr *c) {
    if (!c) return;
    EVP_CIPHER_CTX_free(c->ctx);
    free(c);
}

int ls_srtp_ctr_xor(ls_srtp_ctr *c, const uint8_t iv[16], const uint8_t *in, size_t len, uint8_t *out) {
    if (len > INT_MAX) return 0;
    // Setting only the IV keeps the key schedule and restarts the counter.
    if (!EVP_EncryptInit_ex2(c->ctx, NULL, NULL, iv, NULL)) return 0;
    int n = 0;
    if (len && !EVP_EncryptUpdate(c->ctx, out, &n, in, (int)len)) return 0;
    return 1;
}

ls_srtp_hmac *ls_srtp_hmac_new(const uint8_t *key, size_t key_len) {
    pthread_once(&fetched, fetch);
    if (!hmac_mac || !key || !key_len) return NULL;
    ls_srtp_hmac *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->ctx = EVP_MAC_CTX_new(hmac_mac);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!h->ctx || !EVP_MAC_init(h->ctx, key, key_len, params)) {
        ls_srtp_hmac_free(h);
        return NULL;
    }
    return h;
}

void ls_srtp_hmac_free(ls_srtp_hmac *h) {
    if (!h) return;
    EVP_MAC_CTX_free(h->ctx);
    free(h);
}

int ls_srtp_hmac_sha1(ls_srtp_hmac *h, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t out[20]) {
    size_t n = 0;
    // A NULL key re-initialises the HMAC with the key it has (OpenSSL 3's HMAC provider): no key schedule per packet.
    if (!EVP_MAC_init(h->ctx, NULL, 0, NULL)) return 0;
    if (a_len && !EVP_MAC_update(h->ctx, a, a_len)) return 0;
    if (b_len && !EVP_MAC_update(h->ctx, b, b_len)) return 0;
    return EVP_MAC_final(h->ctx, out, &n, 20) && n == 20;
}

ls_srtp_gcm *ls_srtp_gcm_new(const uint8_t key[16]) {
    pthread_once(&fetched, fetch);
    if (!aes_gcm) return NULL;
    ls_srtp_gcm *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->ctx = EVP_CIPHER_CTX_new();
    // GCM's default IV length is 12 bytes, RFC 7714's.
    if (!g->ctx || !EVP_CipherInit_ex2(g->ctx, aes_gcm, key, NULL, 1, NULL)) {
        ls_srtp_gcm_free(g);
        return NULL;
    }
    return g;
}

void ls_srtp_gcm_free(ls_srtp_gcm *g) {
    if (!g) return;
    EVP_CIPHER_CTX_free(g->ctx);
    free(g);
}

// Starts a message: the IV, the direction, and the associated data.
static int gcm_begin(ls_srtp_gcm *g, int encrypt, const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                     const uint8_t *aad2, size_t aad2_len) {
    int n = 0;
    if (aad_len > INT_MAX || aad2_len > INT_MAX) return 0;
    if (!EVP_CipherInit_ex2(g->ctx, NULL, NULL, iv, encrypt, NULL)) return 0;
    if (aad_len && !EVP_CipherUpdate(g->ctx, NULL, &n, aad, (int)aad_len)) return 0;
    if (aad2_len && !EVP_CipherUpdate(g->ctx, NULL, &n, aad2, (int)aad2_len)) return 0;
    return 1;
}

int ls_srtp_gcm_seal(ls_srtp_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len, const uint8_t *aad2,
                     size_t aad2_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16]) {
    int n = 0, m = 0;
    if (len > INT_MAX || !gcm_begin(g, 1, iv, aad, aad_len, aad2, aad2_len)) return 0;
    if (len && !EVP_CipherUpdate(g->ctx, out, &n, in, (int)len)) return 0;
    if (!EVP_CipherFinal_ex(g->ctx, out + n, &m)) return 0;
    return EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
}

int ls_srtp_gcm_open(ls_srtp_gcm *g, const uint8_t iv[12], const uint8_t *aad, size_t aad_len, const uint8_t *aad2,
                     size_t aad2_len, const uint8_t *in, size_t len, const uint8_t tag[16], uint8_t *out) {
    int n = 0, m = 0;
    if (len > INT_MAX || !gcm_begin(g, 0, iv, aad, aad_len, aad2, aad2_len)) return 0;
    // GCM decrypts before it can check the tag: on a wrong tag the plaintext written is wiped, so that nothing
    // unauthenticated is left for a caller to read by mistake.
    int ok = (!len || EVP_CipherUpdate(g->ctx, out, &n, in, (int)len))
        && EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) == 1
        && EVP_CipherFinal_ex(g->ctx, out + n, &m) > 0;
    if (!ok && len) memset(out, 0, len);
    return ok;
}
