/*
 * insn_count.c: a QEMU TCG plugin that counts executed guest instructions, exactly, and logs
 * where execution passes through one code range (the model's <prefix>_invoke).
 *
 *   qemu-system-arm ... -plugin insn_count.so,lo=0x1234,hi=0x1300,out=trace.txt
 *
 * Every translation block (TB) outside [lo, hi) adds its instruction count to one counter with
 * an inline add (no call, so the emulation stays fast). A TB that starts inside the range calls
 * back instead; the callback logs "pc count_before n_insns" and then adds. The TBs of invoke are
 * few (the code around each kernel call), so the log is short, and because a call ends a TB, the
 * instructions between two logged TBs are exactly those of the kernel called in between:
 * tinyengine/target/icount.py turns the log into per-op counts. The last line is
 * "total N", every instruction of the run.
 *
 * Counting is by TB: a TB that faults halfway would be counted whole, which the firmware never
 * does (a fault ends the run). No interrupt is enabled, so two runs execute the same stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

static uint64_t executed;
static uint64_t range_lo;
static uint64_t range_hi;
static FILE *trace;

/* The userdata of a range TB packs its start address (32-bit guest) and instruction count. */
static void range_tb_exec(unsigned int vcpu_index, void *userdata)
{
    const uint64_t packed = (uint64_t)(uintptr_t)userdata;
    const uint64_t n = packed & 0xFFFFu;
    (void)vcpu_index;
    fprintf(trace, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n", packed >> 16, executed, n);
    executed += n;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    const uint64_t n = (uint64_t)qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (pc >= range_lo && pc < range_hi) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, range_tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)((pc << 16) | n));
    } else {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(trace, "total %" PRIu64 "\n", executed);
    fclose(trace);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *out = NULL;
    int i;
    (void)info;
    if (sizeof(void *) < 8) {
        qemu_plugin_outs("insn_count: needs a 64-bit host\n");
        return -1;
    }
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "lo=", 3) == 0) {
            range_lo = strtoull(argv[i] + 3, NULL, 0);
        } else if (strncmp(argv[i], "hi=", 3) == 0) {
            range_hi = strtoull(argv[i] + 3, NULL, 0);
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        } else {
            qemu_plugin_outs("insn_count: unknown argument (lo=, hi=, out=)\n");
            return -1;
        }
    }
    if (out == NULL || range_hi > 0xFFFFFFFFu || range_lo > range_hi) {
        qemu_plugin_outs("insn_count: needs out=FILE and 0 <= lo <= hi < 2^32\n");
        return -1;
    }
    trace = fopen(out, "w");
    if (trace == NULL) {
        qemu_plugin_outs("insn_count: cannot open the out= file\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
