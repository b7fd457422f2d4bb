#include "uart.h"

/* CMSDK APB UART register block. */
typedef struct {
    volatile uint32_t DATA;      /* 0x00 RX/TX data (low 8 bits) */
    volatile uint32_t STATE;     /* 0x04 bit0 TX full, bit1 RX full, bit2/3 TX/RX overrun */
    volatile uint32_t CTRL;      /* 0x08 bit0 TX enable, bit1 RX enable */
    volatile uint32_t INTSTATUS; /* 0x0C read: interrupt status; write 1 to clear */
    volatile uint32_t BAUDDIV;   /* 0x10 baud divider, >= 16 */
} cmsdk_uart_t;

#define UART0 ((cmsdk_uart_t *)UART0_BASE)
#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)
#define CTRL_TXEN (1u << 0)
#define CTRL_RXEN (1u << 1)

void uart_init(uint32_t baud)
{
    uint32_t div = baud ? MPS2_SYSCLK_HZ / baud : 16u;
    if (div < 16u) {
        div = 16u;
    }
    UART0->CTRL = 0u;
    UART0->BAUDDIV = div;
    UART0->INTSTATUS = 0xFu; /* clear any pending flags */
    UART0->CTRL = CTRL_TXEN | CTRL_RXEN;
}

void uart_putc(char c)
{
    while (UART0->STATE & STATE_TXFULL) {
    }
    UART0->DATA = (uint32_t)(uint8_t)c;
}

void uart_puts(const char *s)
{
    while (*s != '\0') {
        uart_putc(*s++);
    }
}

void uart_put_u64(uint64_t v)
{
    char buf[21];
    int i = 0;
    do {
        /* Divide by 10 in 32-bit halves to avoid pulling __aeabi_uldivmod into the image. */
        uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v, r;
        uint64_t q_hi = hi / 10u;
        r = hi % 10u;
        {
            uint64_t rest = ((uint64_t)r << 32) | lo;
            /* rest < 10 * 2^32: split again into 16-bit steps so each division is 32-bit. */
            uint32_t a = (uint32_t)(rest >> 16);
            uint32_t qa = a / 10u, ra = a % 10u;
            uint32_t b = (ra << 16) | (lo & 0xFFFFu);
            uint32_t qb = b / 10u;
            r = b % 10u;
            v = (q_hi << 32) | ((uint64_t)qa << 16) | qb;
        }
        buf[i++] = (char)('0' + r);
    } while (v != 0u);
    while (i > 0) {
        uart_putc(buf[--i]);
    }
}

void uart_put_u32(uint32_t v)
{
    char buf[10];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (i > 0) {
        uart_putc(buf[--i]);
    }
}

void uart_put_i32(int32_t v)
{
    if (v < 0) {
        uart_putc('-');
        uart_put_u32(0u - (uint32_t)v);
    } else {
        uart_put_u32((uint32_t)v);
    }
}

void uart_put_hex32(uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    int shift;
    uart_puts("0x");
    for (shift = 28; shift >= 0; shift -= 4) {
        uart_putc(hex[(v >> shift) & 0xFu]);
    }
}

int uart_getc_nonblock(void)
{
    if (UART0->STATE & STATE_RXFULL) {
        return (int)(UART0->DATA & 0xFFu);
    }
    return -1;
}

int uart_wait_byte(uint32_t max_polls)
{
    uint32_t i;
    for (i = 0; i < max_polls; i++) {
        const int c = uart_getc_nonblock();
        if (c >= 0) {
            return c;
        }
    }
    return -1;
}
