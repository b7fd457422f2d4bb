#include "ecg/ecg_rb.h"

#include <string.h>

/* Free bytes for a given pair of indices: one byte always stays empty. */
static size_t free_of(size_t size, size_t r, size_t w)
{
    return r > w ? r - w - 1u : size - (w - r) - 1u;
}

static size_t used_of(size_t size, size_t r, size_t w)
{
    return w >= r ? w - r : size - (r - w);
}

ecg_err_t ecg_rb_init(ecg_rb_t *rb, void *buf, size_t size)
{
    if (rb == NULL || buf == NULL) {
        return ECG_ERR_NULL;
    }
    if (size < 2u) {
        return ECG_ERR_RANGE;
    }
    rb->buf = (uint8_t *)buf;
    rb->size = size;
    rb->r = 0u;
    rb->w = 0u;
    return ECG_OK;
}

void ecg_rb_reset(ecg_rb_t *rb)
{
    rb->r = 0u;
    rb->w = 0u;
}

size_t ecg_rb_capacity(const ecg_rb_t *rb)
{
    return rb->size - 1u;
}

size_t ecg_rb_free_bytes(const ecg_rb_t *rb)
{
    return free_of(rb->size, rb->r, rb->w);
}

size_t ecg_rb_used_bytes(const ecg_rb_t *rb)
{
    return used_of(rb->size, rb->r, rb->w);
}

size_t ecg_rb_write(ecg_rb_t *rb, const void *data, size_t len)
{
    const uint8_t *src = (const uint8_t *)data;
    const size_t w = rb->w; /* own index */
    const size_t r = rb->r; /* the consumer's, read once */
    size_t n = free_of(rb->size, r, w);
    size_t first;
    size_t nw;
    if (len < n) {
        n = len;
    }
    if (n == 0u || src == NULL) {
        return 0u;
    }
    first = rb->size - w;
    if (first > n) {
        first = n;
    }
    memcpy(&rb->buf[w], src, first);
    if (n > first) {
        memcpy(rb->buf, &src[first], n - first);
    }
    nw = w + n;
    if (nw >= rb->size) {
        nw -= rb->size;
    }
    ECG_RB_BARRIER(); /* data before the index that publishes it */
    rb->w = nw;
    return n;
}

size_t ecg_rb_peek(const ecg_rb_t *rb, size_t skip, void *data, size_t len)
{
    uint8_t *dst = (uint8_t *)data;
    const size_t r = rb->r;
    const size_t w = rb->w; /* the producer's, read once */
    const size_t used = used_of(rb->size, r, w);
    size_t n;
    size_t start;
    size_t first;
    if (skip >= used || dst == NULL) {
        return 0u;
    }
    ECG_RB_BARRIER(); /* index before the data it covers */
    n = used - skip;
    if (len < n) {
        n = len;
    }
    start = r + skip;
    if (start >= rb->size) {
        start -= rb->size;
    }
    first = rb->size - start;
    if (first > n) {
        first = n;
    }
    memcpy(dst, &rb->buf[start], first);
    if (n > first) {
        memcpy(&dst[first], rb->buf, n - first);
    }
    return n;
}

size_t ecg_rb_read(ecg_rb_t *rb, void *data, size_t len)
{
    size_t n;
    if (data == NULL) {
        return ecg_rb_skip(rb, len);
    }
    n = ecg_rb_peek(rb, 0u, data, len);
    return ecg_rb_skip(rb, n);
}

const uint8_t *ecg_rb_read_block(const ecg_rb_t *rb, size_t *len)
{
    const size_t r = rb->r;
    const size_t w = rb->w;
    size_t n = w >= r ? w - r : rb->size - r;
    ECG_RB_BARRIER();
    if (len != NULL) {
        *len = n;
    }
    return &rb->buf[r];
}

size_t ecg_rb_skip(ecg_rb_t *rb, size_t len)
{
    const size_t r = rb->r;
    const size_t used = used_of(rb->size, r, rb->w);
    size_t nr;
    if (len > used) {
        len = used;
    }
    nr = r + len;
    if (nr >= rb->size) {
        nr -= rb->size;
    }
    ECG_RB_BARRIER(); /* finish reading the data before handing its space back */
    rb->r = nr;
    return len;
}

uint8_t *ecg_rb_write_block(const ecg_rb_t *rb, size_t *len)
{
    const size_t w = rb->w;
    const size_t r = rb->r;
    size_t n;
    if (r > w) {
        n = r - w - 1u;
    } else {
        /* up to the end of the array, minus the one empty byte when r is 0 */
        n = rb->size - w - (r == 0u ? 1u : 0u);
    }
    if (len != NULL) {
        *len = n;
    }
    return &rb->buf[w];
}

size_t ecg_rb_advance(ecg_rb_t *rb, size_t len)
{
    const size_t w = rb->w;
    const size_t n = free_of(rb->size, rb->r, w);
    size_t nw;
    if (len > n) {
        len = n;
    }
    nw = w + len;
    if (nw >= rb->size) {
        nw -= rb->size;
    }
    ECG_RB_BARRIER();
    rb->w = nw;
    return len;
}
