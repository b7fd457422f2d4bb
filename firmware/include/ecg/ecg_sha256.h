/**
 * @file ecg_sha256.h
 * @brief SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), streaming, no heap: the
 *        authentication of head and label packages (ecg_update.h).
 *
 * Usage: `init`, any number of `update` calls with pieces of the message (any split gives the
 * same digest), then `final`. The contexts are caller-owned structs (::ecg_sha256_t 112 bytes,
 * ::ecg_hmac_sha256_t 176 bytes) and may live on the stack. Python's `hashlib.sha256` and
 * `hmac.new(key, msg, "sha256")` compute the same functions (tests/test_update_sha256.py checks
 * them against each other through the extension; tests/c/test_sha256.c checks the FIPS 180-2
 * examples and every RFC 4231 HMAC-SHA256 case).
 *
 * Keys longer than the 64-byte block are hashed first (RFC 2104); any length 0..SIZE_MAX works.
 * ::ecg_hmac_sha256_equal compares tags in time independent of where they differ.
 *
 * Cost: one 64-byte block compression (64 rounds) per 64 message bytes, portable C; the only
 * table is the 64 round constants (256 bytes of flash).
 *
 * \note Pure functions over the caller's context: re-entrant; one context per computation.
 */
#ifndef ECG_SHA256_H
#define ECG_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ECG_SHA256_DIGEST_LEN 32u /**< digest (and HMAC tag) length, bytes */
#define ECG_SHA256_BLOCK_LEN 64u  /**< compression block, bytes (HMAC key block) */

/** SHA-256 context. Caller-owned; fields are private to ecg_sha256.c. */
typedef struct {
    uint32_t h[8];                      /* chaining value */
    uint64_t bytes;                     /* message bytes so far */
    uint8_t buf[ECG_SHA256_BLOCK_LEN];  /* partial block */
    uint32_t buf_len;                   /* bytes in buf, 0..63 */
} ecg_sha256_t;

/** HMAC-SHA256 context: the inner hash and the outer key pad. */
typedef struct {
    ecg_sha256_t inner;
    uint8_t okey[ECG_SHA256_BLOCK_LEN]; /* key XOR 0x5c */
} ecg_hmac_sha256_t;

/** @brief Start a SHA-256 computation. */
void ecg_sha256_init(ecg_sha256_t *s);

/**
 * @brief Hash more message bytes.
 * @param[in,out] s     context
 * @param[in]     data  bytes; may be NULL when `len` is 0
 * @param[in]     len   number of bytes
 */
void ecg_sha256_update(ecg_sha256_t *s, const uint8_t *data, size_t len);

/**
 * @brief Finish: pad, write the digest. The context must be re-initialised before reuse.
 * @param[in,out] s       context
 * @param[out]    digest  ::ECG_SHA256_DIGEST_LEN bytes
 */
void ecg_sha256_final(ecg_sha256_t *s, uint8_t digest[ECG_SHA256_DIGEST_LEN]);

/** @brief SHA-256 of one buffer (init + update + final). */
void ecg_sha256(const uint8_t *data, size_t len, uint8_t digest[ECG_SHA256_DIGEST_LEN]);

/**
 * @brief Start an HMAC-SHA256 computation with `key`.
 * @param[out] h        context
 * @param[in]  key      key bytes; may be NULL when `key_len` is 0
 * @param[in]  key_len  key length in bytes (longer than 64: hashed first, RFC 2104)
 */
void ecg_hmac_sha256_init(ecg_hmac_sha256_t *h, const uint8_t *key, size_t key_len);

/** @brief Authenticate more message bytes (see ::ecg_sha256_update). */
void ecg_hmac_sha256_update(ecg_hmac_sha256_t *h, const uint8_t *data, size_t len);

/**
 * @brief Finish: write the 32-byte tag. The context must be re-initialised before reuse.
 * @param[in,out] h    context
 * @param[out]    tag  ::ECG_SHA256_DIGEST_LEN bytes
 */
void ecg_hmac_sha256_final(ecg_hmac_sha256_t *h, uint8_t tag[ECG_SHA256_DIGEST_LEN]);

/**
 * @brief Compare two byte strings in time that depends only on `len` (tag checks).
 * @return 1 when equal, 0 otherwise (also when a pointer is NULL)
 */
int ecg_hmac_sha256_equal(const uint8_t *a, const uint8_t *b, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ECG_SHA256_H */
