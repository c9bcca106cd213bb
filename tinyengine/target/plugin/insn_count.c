/*
 * insn_count.c: a QEMU TCG plugin that counts executed guest instructions, exactly, sorted into
 * the classes of thumb_classes.h, and logs where execution passes through one code range (the
 * model's <prefix>_invoke).
 *
 *   qemu-system-arm ... -plugin insn_count.so,lo=0x1234,hi=0x1300,out=trace.txt[,isa=thumb]
 *
 * Each translation block (TB) is classified once, when QEMU translates it; every execution of it
 * then adds its counts with one callback. The callback also settles the previous TB's conditional
 * branch: taken unless this TB starts where that one fell through. (Data loads are classified,
 * not followed to their addresses: QEMU 7.2's memory callbacks miss most accesses of Thumb code,
 * so which loads read flash is not known here; PC-relative ones are counted apart.)
 * A TB that starts inside [lo, hi) also logs "pc executed n c[0..K) s[0..K)": the instructions
 * and class counts executed before it, its own size, and its own (static) class counts. The TBs
 * of invoke are few (the code around each kernel call), so the log is short, and because a call
 * ends a TB, what runs between two logged TBs is exactly the kernel called in between:
 * tinyengine/target/icount.py turns the log into per-op counts. The last line is
 * "total N c[0..K)", the whole run.
 *
 * isa=riscv counts instructions only (no classes: the cycle model covers the Cortex-M cores).
 * Counting is by TB: a TB that faults halfway would be counted whole, which the firmware never
 * does (a fault ends the run). No interrupt is enabled, so two runs execute the same stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"
#include "thumb_classes.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* One per translation; QEMU keeps a translation for the whole run unless its code cache fills,
 * and the firmware is small, so these are never freed. */
struct tb_info {
    uint64_t pc;
    uint64_t fallthrough;  /* the address after the TB's last instruction */
    uint64_t n_insns;
    int logged;            /* starts inside [lo, hi) */
    int ends_in_cond;      /* its last instruction is a conditional branch */
    uint64_t counts[K_COUNT];
};

static uint64_t executed;
static uint64_t counts[K_COUNT];
static const struct tb_info *pending;  /* the last TB, if it ended in a conditional branch */
static uint64_t range_lo;
static uint64_t range_hi;
static int classify;
static FILE *trace;

static void print_counts(const uint64_t *c)
{
    int k;
    for (k = 0; k < K_COUNT; ++k) {
        fprintf(trace, " %" PRIu64, c[k]);
    }
}

static void tb_exec(unsigned int vcpu_index, void *userdata)
{
    const struct tb_info *tb = userdata;
    int k;
    (void)vcpu_index;
    if (pending != NULL) {
        counts[K_COND_TAKEN] += tb->pc != pending->fallthrough;
        pending = NULL;
    }
    if (tb->logged) {
        fprintf(trace, "%" PRIx64 " %" PRIu64 " %" PRIu64, tb->pc, executed, tb->n_insns);
        print_counts(counts);
        print_counts(tb->counts);
        fputc('\n', trace);
    }
    executed += tb->n_insns;
    for (k = 0; k < K_COUNT; ++k) {
        counts[k] += tb->counts[k];
    }
    if (tb->ends_in_cond) {
        pending = tb;
    }
}

/* Classify the TB's Thumb instructions into info->counts. */
static void classify_tb(struct qemu_plugin_tb *tb, struct tb_info *info, size_t n)
{
    int it_left = 0;
    int last_single_ls = 0;
    size_t i;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const uint8_t *b = qemu_plugin_insn_data(insn);
        const size_t size = qemu_plugin_insn_size(insn);
        const uint32_t hw1 = (uint32_t)b[0] | ((uint32_t)b[1] << 8);
        struct thumb_insn c;
        int single_ls;
        if (size == 4) {
            c = classify_32(hw1, (uint32_t)b[2] | ((uint32_t)b[3] << 8));
        } else {
            c = classify_16(hw1);
        }
        if (it_left > 0) {
            --it_left;
            if (c.cls == K_BRANCH) {
                c.cls = K_COND_BRANCH;  /* a branch in an IT block is conditional */
            }
        }
        if (c.it_length > 0) {
            it_left = c.it_length;
        }
        info->counts[c.cls] += 1;
        info->counts[K_LSM_WORDS] += (uint64_t)c.words;
        info->counts[K_PC_WRITE] += (uint64_t)c.pc_write;
        single_ls = c.cls == K_LOAD || c.cls == K_STORE;
        info->counts[K_LS_PIPELINED] += (uint64_t)(single_ls && last_single_ls);
        last_single_ls = single_ls;
        info->counts[K_LITERAL] += (uint64_t)c.literal * (c.cls == K_LSM ? 2u : 1u);
        info->ends_in_cond = c.cls == K_COND_BRANCH;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    const size_t n = qemu_plugin_tb_n_insns(tb);
    struct tb_info *info = calloc(1, sizeof *info);
    struct qemu_plugin_insn *last;
    (void)id;
    if (info == NULL || n == 0) {
        free(info);
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
        return;
    }
    last = qemu_plugin_tb_get_insn(tb, n - 1);
    info->pc = pc;
    info->fallthrough = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last);
    info->n_insns = n;
    info->logged = pc >= range_lo && pc < range_hi;
    if (classify) {
        classify_tb(tb, info, n);
        info->counts[K_LINES16] = ((info->fallthrough - 1) >> 4) - (pc >> 4) + 1;
        info->counts[K_LINES32] = ((info->fallthrough - 1) >> 5) - (pc >> 5) + 1;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, info);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(trace, "total %" PRIu64, executed);
    print_counts(counts);
    fputc('\n', trace);
    fclose(trace);
}

static int parse_address(const char *arg, const char *key, uint64_t *value)
{
    const size_t len = strlen(key);
    if (strncmp(arg, key, len) != 0) {
        return 0;
    }
    *value = strtoull(arg + len, NULL, 0);
    return 1;
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
    classify = 1;
    for (i = 0; i < argc; ++i) {
        if (parse_address(argv[i], "lo=", &range_lo)
            || parse_address(argv[i], "hi=", &range_hi)) {
            continue;
        }
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        } else if (strcmp(argv[i], "isa=thumb") == 0 || strcmp(argv[i], "isa=riscv") == 0) {
            classify = strcmp(argv[i], "isa=thumb") == 0;
        } else {
            qemu_plugin_outs("insn_count: unknown argument (lo=, hi=, out=, isa=)\n");
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
