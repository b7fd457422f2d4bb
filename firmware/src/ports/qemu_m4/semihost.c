#include "semihost.h"

int32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

void semihost_write0(const char *s)
{
    (void)semihost_call(SEMIHOST_SYS_WRITE0, s);
}

void semihost_exit(uint32_t code)
{
    /* Parameter block {reason, subcode}; with the extended call QEMU returns `subcode` as its
     * exit status (the plain 32-bit SYS_EXIT could only say success or failure). */
    static uint32_t block[2];
    block[0] = SEMIHOST_ADP_STOPPED_APPLICATION_EXIT;
    block[1] = code;
    (void)semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, block);
    /* Only reached when the host ignored the request (e.g. a debugger without semihosting). */
    for (;;) {
        __asm__ volatile("wfi");
    }
}
