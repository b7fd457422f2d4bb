/*
 * QEMU TCG plugin: exact guest-instruction counts per instruction address, gated by markers.
 *
 * Every executed guest instruction at an address below `limit` calls back here; while the
 * profile is armed, the callback adds one to that address's counter. Executing the instruction
 * at `start` arms it, at `stop` disarms it (the firmware calls two noinline marker functions
 * around the code to profile). At exit the counters are written to `out` as text:
 *
 *     armed_intervals N
 *     total T
 *     0xADDR COUNT        (one line per address executed while armed)
 *
 * tools/bench_firmware.py maps addresses to functions with arm-none-eabi-nm.
 *
 * Usage: qemu-system-arm ... -plugin libinsn_profile.so,start=0x...,stop=0x...,out=FILE[,limit=N]
 * Single vCPU guests only (the counters are not atomic).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_API_VERSION;

static uint64_t *g_counts;   /* one counter per halfword address below g_limit */
static uint64_t g_limit = 4u << 20;
static uint64_t g_start = UINT64_MAX, g_stop = UINT64_MAX;
static int g_armed;
static uint64_t g_intervals;
static char g_out[1024];

static void on_start(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    (void)ud;
    if (!g_armed) {
        g_armed = 1;
        g_intervals++;
    }
}

static void on_stop(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    (void)ud;
    g_armed = 0;
}

static void on_insn(unsigned int vcpu, void *ud)
{
    (void)vcpu;
    if (g_armed) {
        ++*(uint64_t *)ud;
    }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (pc == g_start) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (pc < g_limit) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_insn, QEMU_PLUGIN_CB_NO_REGS,
                                                   &g_counts[pc >> 1]);
        }
        if (pc == g_stop) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *ud)
{
    FILE *f;
    uint64_t i, total = 0;
    (void)id;
    (void)ud;
    for (i = 0; i < g_limit >> 1; i++) {
        total += g_counts[i];
    }
    f = fopen(g_out, "w");
    if (f == NULL) {
        qemu_plugin_outs("insn_profile: cannot write the output file\n");
        return;
    }
    fprintf(f, "armed_intervals %llu\ntotal %llu\n", (unsigned long long)g_intervals,
            (unsigned long long)total);
    for (i = 0; i < g_limit >> 1; i++) {
        if (g_counts[i] != 0u) {
            fprintf(f, "0x%llx %llu\n", (unsigned long long)(i << 1),
                    (unsigned long long)g_counts[i]);
        }
    }
    fclose(f);
}

static int parse_u64(const char *arg, const char *key, uint64_t *v)
{
    const size_t k = strlen(key);
    if (strncmp(arg, key, k) == 0 && arg[k] == '=') {
        *v = strtoull(arg + k + 1, NULL, 0);
        return 1;
    }
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                           int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(g_out, sizeof g_out, "%s", argv[i] + 4);
        } else if (!parse_u64(argv[i], "start", &g_start) &&
                   !parse_u64(argv[i], "stop", &g_stop) &&
                   !parse_u64(argv[i], "limit", &g_limit)) {
            fprintf(stderr, "insn_profile: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (g_out[0] == '\0' || g_start == UINT64_MAX || g_stop == UINT64_MAX) {
        fprintf(stderr, "insn_profile: needs start=ADDR,stop=ADDR,out=FILE\n");
        return -1;
    }
    g_start &= ~(uint64_t)1; /* Thumb symbol values carry bit 0 */
    g_stop &= ~(uint64_t)1;
    g_counts = calloc((size_t)(g_limit >> 1) + 1u, sizeof *g_counts);
    if (g_counts == NULL) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
