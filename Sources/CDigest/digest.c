#include "CDigest.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>

// OpenSSL 3 looks an algorithm up by name on every implicit fetch; fetching each one once keeps that off the
// per-packet path.
static EVP_MD *digests[3];
static EVP_MAC *hmac;
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

static void fetch(void) {
    digests[LS_MD5] = EVP_MD_fetch(NULL, "MD5", NULL);
    digests[LS_SHA1] = EVP_MD_fetch(NULL, "SHA1", NULL);
    digests[LS_SHA256] = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static const char *names[3] = { "MD5", "SHA1", "SHA256" };

size_t ls_digest(ls_digest_algorithm algorithm, const void *data, size_t len, uint8_t *out) {
    if ((unsigned)algorithm > LS_SHA256) return 0;
    pthread_once(&fetched, fetch);
    unsigned int n = 0;
    if (!digests[algorithm] || !EVP_Digest(data, len, out, &n, digests[algorithm], NULL)) return 0;
    return n;
}

size_t ls_hmac(ls_digest_algorithm algorithm, const void *key, size_t key_len, const void *data, size_t len, uint8_t *out) {
    if (algorithm != LS_SHA1 && algorithm != LS_SHA256) return 0;
    pthread_once(&fetched, fetch);
    if (!hmac) return 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);
    if (!ctx) return 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)names[algorithm], 0),
        OSSL_PARAM_construct_end(),
    };
    // A zero-length key is legal HMAC; OpenSSL wants a non-NULL pointer for it.
    static const uint8_t empty = 0;
    size_t n = 0;
    int ok = EVP_MAC_init(ctx, key_len ? key : &empty, key_len, params)
        && EVP_MAC_update(ctx, data, len)
        && EVP_MAC_final(ctx, out, &n, 32);
    EVP_MAC_CTX_free(ctx);
    return ok ? n : 0;
}
