#include "ecg/ecg_sha256.h"

#include <string.h>

/* FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first
 * 64 primes. */
static const uint32_t sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32u - (n))))

/* One 64-byte block (FIPS 180-4 §6.2.2), the message schedule kept as a 16-word window. */
static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    unsigned t;
    for (t = 0; t < 64u; t++) {
        uint32_t t1, t2;
        if (t < 16u) {
            w[t] = ((uint32_t)p[4u * t] << 24) | ((uint32_t)p[4u * t + 1u] << 16) |
                   ((uint32_t)p[4u * t + 2u] << 8) | (uint32_t)p[4u * t + 3u];
        } else {
            const uint32_t w15 = w[(t - 15u) & 15u];
            const uint32_t w2 = w[(t - 2u) & 15u];
            const uint32_t s0 = ROTR(w15, 7u) ^ ROTR(w15, 18u) ^ (w15 >> 3);
            const uint32_t s1 = ROTR(w2, 17u) ^ ROTR(w2, 19u) ^ (w2 >> 10);
            w[t & 15u] = w[t & 15u] + s0 + w[(t - 7u) & 15u] + s1;
        }
        t1 = hh + (ROTR(e, 6u) ^ ROTR(e, 11u) ^ ROTR(e, 25u)) + ((e & f) ^ (~e & g)) +
             sha256_k[t] + w[t & 15u];
        t2 = (ROTR(a, 2u) ^ ROTR(a, 13u) ^ ROTR(a, 22u)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void ecg_sha256_init(ecg_sha256_t *s)
{
    /* FIPS 180-4 §5.3.3: square roots of the first 8 primes */
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    if (s == NULL) {
        return;
    }
    memcpy(s->h, iv, sizeof iv);
    s->bytes = 0u;
    s->buf_len = 0u;
}

void ecg_sha256_update(ecg_sha256_t *s, const uint8_t *data, size_t len)
{
    if (s == NULL || data == NULL) {
        return;
    }
    s->bytes += (uint64_t)len;
    if (s->buf_len > 0u) {
        size_t k = ECG_SHA256_BLOCK_LEN - s->buf_len;
        if (k > len) {
            k = len;
        }
        memcpy(&s->buf[s->buf_len], data, k);
        s->buf_len += (uint32_t)k;
        data += k;
        len -= k;
        if (s->buf_len < ECG_SHA256_BLOCK_LEN) {
            return;
        }
        sha256_block(s->h, s->buf);
        s->buf_len = 0u;
    }
    while (len >= ECG_SHA256_BLOCK_LEN) {
        sha256_block(s->h, data);
        data += ECG_SHA256_BLOCK_LEN;
        len -= ECG_SHA256_BLOCK_LEN;
    }
    if (len > 0u) {
        memcpy(s->buf, data, len);
        s->buf_len = (uint32_t)len;
    }
}

void ecg_sha256_final(ecg_sha256_t *s, uint8_t digest[ECG_SHA256_DIGEST_LEN])
{
    uint64_t bits;
    unsigned i;
    if (s == NULL || digest == NULL) {
        return;
    }
    bits = s->bytes * 8u;
    /* 0x80, zeros up to 56 mod 64, then the bit length big-endian (§5.1.1) */
    s->buf[s->buf_len++] = 0x80u;
    if (s->buf_len > 56u) {
        memset(&s->buf[s->buf_len], 0, ECG_SHA256_BLOCK_LEN - s->buf_len);
        sha256_block(s->h, s->buf);
        s->buf_len = 0u;
    }
    memset(&s->buf[s->buf_len], 0, 56u - s->buf_len);
    for (i = 0; i < 8u; i++) {
        s->buf[56u + i] = (uint8_t)(bits >> (56u - 8u * i));
    }
    sha256_block(s->h, s->buf);
    for (i = 0; i < 8u; i++) {
        digest[4u * i] = (uint8_t)(s->h[i] >> 24);
        digest[4u * i + 1u] = (uint8_t)(s->h[i] >> 16);
        digest[4u * i + 2u] = (uint8_t)(s->h[i] >> 8);
        digest[4u * i + 3u] = (uint8_t)s->h[i];
    }
    s->buf_len = 0u;
}

void ecg_sha256(const uint8_t *data, size_t len, uint8_t digest[ECG_SHA256_DIGEST_LEN])
{
    ecg_sha256_t s;
    ecg_sha256_init(&s);
    ecg_sha256_update(&s, data, len);
    ecg_sha256_final(&s, digest);
}

void ecg_hmac_sha256_init(ecg_hmac_sha256_t *h, const uint8_t *key, size_t key_len)
{
    uint8_t k[ECG_SHA256_BLOCK_LEN];
    uint8_t ipad[ECG_SHA256_BLOCK_LEN];
    unsigned i;
    if (h == NULL) {
        return;
    }
    memset(k, 0, sizeof k);
    if (key != NULL && key_len > ECG_SHA256_BLOCK_LEN) {
        ecg_sha256(key, key_len, k); /* RFC 2104: long keys are hashed */
    } else if (key != NULL && key_len > 0u) {
        memcpy(k, key, key_len);
    }
    for (i = 0; i < ECG_SHA256_BLOCK_LEN; i++) {
        ipad[i] = (uint8_t)(k[i] ^ 0x36u);
        h->okey[i] = (uint8_t)(k[i] ^ 0x5cu);
    }
    ecg_sha256_init(&h->inner);
    ecg_sha256_update(&h->inner, ipad, sizeof ipad);
    memset(k, 0, sizeof k);
    memset(ipad, 0, sizeof ipad);
}

void ecg_hmac_sha256_update(ecg_hmac_sha256_t *h, const uint8_t *data, size_t len)
{
    if (h != NULL) {
        ecg_sha256_update(&h->inner, data, len);
    }
}

void ecg_hmac_sha256_final(ecg_hmac_sha256_t *h, uint8_t tag[ECG_SHA256_DIGEST_LEN])
{
    uint8_t inner[ECG_SHA256_DIGEST_LEN];
    ecg_sha256_t outer;
    if (h == NULL || tag == NULL) {
        return;
    }
    ecg_sha256_final(&h->inner, inner);
    ecg_sha256_init(&outer);
    ecg_sha256_update(&outer, h->okey, sizeof h->okey);
    ecg_sha256_update(&outer, inner, sizeof inner);
    ecg_sha256_final(&outer, tag);
    memset(h->okey, 0, sizeof h->okey);
}

int ecg_hmac_sha256_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t diff = 0u;
    size_t i;
    if (a == NULL || b == NULL) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        diff = (uint8_t)(diff | (a[i] ^ b[i]));
    }
    return diff == 0u;
}
