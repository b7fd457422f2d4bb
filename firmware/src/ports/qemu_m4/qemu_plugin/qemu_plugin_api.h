/*
 * The subset of QEMU's TCG plugin C API (API version 1, QEMU 6.0 to 8.x) that insn_profile.c
 * uses, declared here because Debian ships QEMU with plugin support but without the
 * qemu-plugin.h header. These are the entry points the qemu-system binary exports
 * (`nm -D qemu-system-arm | grep qemu_plugin`); QEMU refuses a plugin whose
 * `qemu_plugin_version` it does not support, so a mismatch fails loudly at load time.
 */
#ifndef QEMU_PLUGIN_API_SUBSET_H
#define QEMU_PLUGIN_API_SUBSET_H

#include <stddef.h>
#include <stdint.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_API_VERSION 1

typedef uint64_t qemu_plugin_id_t;

struct qemu_plugin_tb;   /* opaque: a translated block */
struct qemu_plugin_insn; /* opaque: one guest instruction of a block */
struct qemu_info_t;      /* opaque here: not inspected */

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS = 0, /* callback does not read guest registers */
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

/* Exported by the plugin. */
QEMU_PLUGIN_EXPORT extern int qemu_plugin_version;
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                           int argc, char **argv);

/* Provided by QEMU. */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

#endif /* QEMU_PLUGIN_API_SUBSET_H */
