/*
 * Tests of SHA-256 and HMAC-SHA256 (firmware/src/core/ecg_sha256.c).
 *
 * Usage: test_sha256            (no arguments; tests/test_update_sha256.py builds it with every
 *                                core source under ASan/UBSan and runs it)
 *
 * Expected digests are the published ones: the FIPS 180-2 appendix B examples (plus the empty
 * message) and all seven HMAC-SHA256 cases of RFC 4231 §4 (case 5 compares the 128-bit
 * truncation, as the RFC does). Every message is also fed in uneven pieces, which must give the
 * same digest. Prints one "ok"/"FAIL" line per test, then "N passed, M failed"; exits 0 only
 * when nothing failed. Plain C99, no framework.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ecg/ecg_sha256.h"

#include "check.h"

/* Compare `n` bytes with a lowercase hex string of 2n characters. */
static void check_hex(const uint8_t *got, size_t n, const char *want_hex)
{
    char hex[2u * ECG_SHA256_DIGEST_LEN + 1u];
    size_t i;
    for (i = 0; i < n && i < ECG_SHA256_DIGEST_LEN; i++) {
        snprintf(&hex[2u * i], 3u, "%02x", got[i]);
    }
    hex[2u * i] = '\0';
    CHECK(strcmp(hex, want_hex) == 0);
    if (strcmp(hex, want_hex) != 0) {
        printf("     got  %s\n     want %s\n", hex, want_hex);
    }
}

/* SHA-256 of `msg` in one call and in pieces of 1, 3, 63, 64, 65 ... bytes. */
static void check_sha(const uint8_t *msg, size_t len, const char *want_hex)
{
    static const size_t steps[] = {1u, 3u, 63u, 64u, 65u, 200u};
    uint8_t d[ECG_SHA256_DIGEST_LEN];
    size_t k;
    ecg_sha256(msg, len, d);
    check_hex(d, sizeof d, want_hex);
    for (k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        ecg_sha256_t s;
        size_t off = 0;
        ecg_sha256_init(&s);
        while (off < len) {
            const size_t n = len - off < steps[k] ? len - off : steps[k];
            ecg_sha256_update(&s, msg + off, n);
            off += n;
        }
        ecg_sha256_final(&s, d);
        check_hex(d, sizeof d, want_hex);
    }
}

static void check_hmac(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                       const char *want_hex, size_t want_len)
{
    uint8_t tag[ECG_SHA256_DIGEST_LEN];
    ecg_hmac_sha256_t h;
    size_t off;
    ecg_hmac_sha256_init(&h, key, key_len);
    ecg_hmac_sha256_update(&h, msg, len);
    ecg_hmac_sha256_final(&h, tag);
    check_hex(tag, want_len, want_hex);
    /* the same in 7-byte pieces */
    ecg_hmac_sha256_init(&h, key, key_len);
    for (off = 0; off < len; off += 7u) {
        ecg_hmac_sha256_update(&h, msg + off, len - off < 7u ? len - off : 7u);
    }
    ecg_hmac_sha256_final(&h, tag);
    check_hex(tag, want_len, want_hex);
}

static void test_sha256_fips_180_examples(void)
{
    static uint8_t million_a[1000000];
    const char *abc = "abc";
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha((const uint8_t *)"", 0u,
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha((const uint8_t *)abc, strlen(abc),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha((const uint8_t *)two_blocks, strlen(two_blocks),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    memset(million_a, 'a', sizeof million_a);
    check_sha(million_a, sizeof million_a,
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_hmac_sha256_rfc4231_cases(void)
{
    uint8_t key[131];
    uint8_t data[50];
    uint8_t i;
    const char *m2 = "what do ya want for nothing?";
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const char *m7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the HMAC "
                     "algorithm.";
    /* 1 */
    memset(key, 0x0b, 20);
    check_hmac(key, 20, (const uint8_t *)"Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32);
    /* 2 */
    check_hmac((const uint8_t *)"Jefe", 4, (const uint8_t *)m2, strlen(m2),
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32);
    /* 3 */
    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    check_hmac(key, 20, data, 50,
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32);
    /* 4 */
    for (i = 0; i < 25u; i++) {
        key[i] = (uint8_t)(i + 1u);
    }
    memset(data, 0xcd, 50);
    check_hmac(key, 25, data, 50,
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32);
    /* 5: truncated to 128 bits */
    memset(key, 0x0c, 20);
    check_hmac(key, 20, (const uint8_t *)"Test With Truncation", 20,
               "a3b6167473100ee06e0c796c2955552b", 16);
    /* 6, 7: a 131-byte key (hashed first) */
    memset(key, 0xaa, 131);
    check_hmac(key, 131, (const uint8_t *)m6, strlen(m6),
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32);
    check_hmac(key, 131, (const uint8_t *)m7, strlen(m7),
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32);
}

static void test_tag_comparison_finds_any_difference(void)
{
    uint8_t a[32], b[32];
    unsigned i;
    for (i = 0; i < 32u; i++) {
        a[i] = b[i] = (uint8_t)(i * 7u);
    }
    CHECK_EQ(ecg_hmac_sha256_equal(a, b, 32), 1);
    for (i = 0; i < 32u; i++) {
        b[i] ^= 0x01u;
        CHECK_EQ(ecg_hmac_sha256_equal(a, b, 32), 0);
        b[i] ^= 0x01u;
    }
    CHECK_EQ(ecg_hmac_sha256_equal(NULL, b, 32), 0);
}

int main(void)
{
    RUN(test_sha256_fips_180_examples);
    RUN(test_hmac_sha256_rfc4231_cases);
    RUN(test_tag_comparison_finds_any_difference);
    printf("sizeof(ecg_sha256_t)=%u sizeof(ecg_hmac_sha256_t)=%u\n",
           (unsigned)sizeof(ecg_sha256_t), (unsigned)sizeof(ecg_hmac_sha256_t));
    printf("%u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}
