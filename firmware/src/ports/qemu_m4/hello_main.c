/*
 * Smallest useful image of the QEMU Cortex-M4 port: prints a banner on UART0 and over semihosting,
 * echoes one line received on UART0, and exits with a fixed status. tests/test_qemu_port.py uses
 * it to check the vector table, FPU enable, .data/.bss init, UART TX/RX and the exit code path.
 */
#include <stdint.h>

#include "port.h"
#include "semihost.h"
#include "uart.h"

#define HELLO_EXIT_CODE 42
#define HELLO_POLL_LIMIT 200000000u /* give up waiting for input after this many polls */

static volatile float g_fpu_probe = 1.5f; /* in .data: checks the copy and the FPU */
static uint32_t g_bss_probe;              /* in .bss: must read as zero */

int main(void)
{
    char line[64];
    uint32_t n = 0u, polls = 0u;
    const float f = g_fpu_probe * 3.0f; /* 4.5: a VFP multiply */

    uart_init(115200u);
    semihost_write0("ecgedge qemu_m4 hello (semihosting)\n");
    uart_puts("ecgedge qemu_m4 hello\n");
    uart_puts("fpu=");
    uart_put_u32((uint32_t)(f * 2.0f)); /* 9 */
    uart_puts(" bss=");
    uart_put_u32(g_bss_probe);
    uart_puts(" stack=");
    uart_put_u32(port_stack_used());
    uart_puts("/");
    uart_put_u32(port_stack_size());
    uart_puts("\nready\n");

    while (n < sizeof(line) - 1u && polls < HELLO_POLL_LIMIT) {
        const int c = uart_getc_nonblock();
        if (c < 0) {
            polls++;
            continue;
        }
        if (c == '\n' || c == '\r') {
            break;
        }
        line[n++] = (char)c;
    }
    line[n] = '\0';
    if (polls >= HELLO_POLL_LIMIT) {
        uart_puts("timeout\n");
        return 2;
    }
    uart_puts("echo: ");
    uart_puts(line);
    uart_puts("\nbye\n");
    (void)uart_wait_byte(HELLO_POLL_LIMIT); /* host acknowledges: it has read everything */
    return HELLO_EXIT_CODE;
}
