/*
 * thumb_classes.h: sorts Thumb instructions (ARMv6-M, ARMv7-M, ARMv8-M Mainline with the DSP,
 * FP and MVE extensions) into the classes the cycle model of tinyengine/target/cycles.py weighs.
 *
 * Each instruction gets one primary class (the first group of the enum, so the primary counts add
 * up to the instruction count) and may add to the extra counters: the words a load/store
 * multiple moves, a write of the PC by something that is not a branch (POP {..., pc}, LDR pc,
 * MOV pc: one pipeline refill each), and a single load/store right after another one (the M3/M4
 * pipeline the two, so the second costs one cycle less). Decoding follows the encoding tables of
 * the ARMv7-M Architecture Reference Manual (DDI 0403), A5.2 (16-bit) and A5.3 (32-bit);
 * coprocessor space (FP and MVE) is told apart by the coprocessor field only: 10 and 11 are FP,
 * anything else there is counted as an MVE vector instruction.
 */
#ifndef TINYENGINE_THUMB_CLASSES_H
#define TINYENGINE_THUMB_CLASSES_H

#include <stdint.h>

enum insn_class {
    /* Primary classes: exactly one per instruction. */
    K_ALU,          /* data processing, moves, compares, extends, IT, hints: one cycle */
    K_LOAD,         /* single loads: LDR, LDRB, LDRH, LDRS*, LDREX, VLDR */
    K_STORE,        /* single stores */
    K_LSM,          /* LDM, STM, PUSH, POP, LDRD, STRD, VLDM, VSTM, VPUSH, VPOP */
    K_MUL,          /* MUL: 32 x 32 -> 32 */
    K_MLA,          /* MLA, MLS */
    K_LONG_MUL,     /* SMULL, UMULL, SMLAL, UMLAL, UMAAL, SMLALxy, SMLALD, SMLSLD */
    K_DSP_MAC,      /* DSP multiplies: SMLAD, SMUAD, SMLAxy, SMULxy, SMLAWx, SMMUL, SMMLA, ... */
    K_SIMD,         /* DSP without a multiply: SADD16, QADD8, SXTB16, SXTAB16, SEL, USAD8, ... */
    K_DIV,          /* SDIV, UDIV */
    K_BRANCH,       /* unconditional B, BL, BX, BLX, TBB, TBH: always taken */
    K_COND_BRANCH,  /* B<cond>, CBZ, CBNZ, and branches inside an IT block */
    K_FP,           /* floating-point data processing and register moves */
    K_VECTOR,       /* MVE (Helium) instructions, Cortex-M55 */
    K_PRIMARY,      /* (count of the primary classes) */
    /* Extra counters. */
    K_LSM_WORDS = K_PRIMARY,  /* words moved by the K_LSM instructions */
    K_PC_WRITE,     /* a load or data-processing instruction writing the PC: one refill */
    K_LS_PIPELINED, /* a single load/store directly after another in the same block */
    K_COND_TAKEN,   /* conditional branches taken (counted at run time) */
    K_LINES16,      /* 16-byte lines of code the executed blocks span (flash fetches) */
    K_LINES32,      /* the same in 32-byte lines */
    K_LITERAL,      /* PC-relative (literal pool) loads: data read from the code's memory */
    K_COUNT
};

struct thumb_insn {
    int cls;           /* primary class */
    int words;         /* K_LSM: words moved */
    int pc_write;      /* writes the PC without being a branch */
    int loads;         /* reads memory */
    int literal;       /* a PC-relative load */
    int it_length;     /* an IT instruction: how many instructions it makes conditional */
};

static int popcount16(uint32_t x)
{
    int n = 0;
    for (x &= 0xFFFFu; x != 0; x &= x - 1) {
        ++n;
    }
    return n;
}

static struct thumb_insn classify_16(uint32_t hw)
{
    struct thumb_insn r = {K_ALU, 0, 0, 0, 0, 0};
    if ((hw & 0xFFC0u) == 0x4340u) {                       /* MULS */
        r.cls = K_MUL;
    } else if ((hw & 0xFF00u) == 0x4700u) {                /* BX, BLX (register) */
        r.cls = K_BRANCH;
    } else if ((hw & 0xFC00u) == 0x4400u) {                /* ADD, CMP, MOV (high registers) */
        const uint32_t rd = ((hw >> 4) & 8u) | (hw & 7u);
        r.pc_write = rd == 15u && (hw & 0xFF00u) != 0x4500u;
    } else if ((hw & 0xF800u) == 0x4800u) {                /* LDR (literal) */
        r.cls = K_LOAD;
        r.loads = 1;
        r.literal = 1;
    } else if ((hw & 0xF000u) == 0x5000u) {                /* load/store (register offset) */
        const uint32_t opb = (hw >> 9) & 7u;
        r.cls = opb >= 3u ? K_LOAD : K_STORE;
        r.loads = r.cls == K_LOAD;
    } else if ((hw & 0xE000u) == 0x6000u || (hw & 0xE000u) == 0x8000u) {
        r.cls = (hw & 0x0800u) ? K_LOAD : K_STORE;         /* immediate / SP-relative */
        r.loads = r.cls == K_LOAD;
    } else if ((hw & 0xFE00u) == 0xB400u || (hw & 0xFE00u) == 0xBC00u) {   /* PUSH, POP */
        r.cls = K_LSM;
        r.words = popcount16(hw & 0xFFu) + (int)((hw >> 8) & 1u);
        r.loads = (hw & 0x0800u) != 0;
        r.pc_write = r.loads && (hw & 0x0100u);
    } else if ((hw & 0xF500u) == 0xB100u) {                /* CBZ, CBNZ */
        r.cls = K_COND_BRANCH;
    } else if ((hw & 0xFF00u) == 0xBF00u && (hw & 0xFu) != 0) {   /* IT */
        uint32_t mask = hw & 0xFu;
        int trailing = 0;
        while ((mask & 1u) == 0) {
            mask >>= 1;
            ++trailing;
        }
        r.it_length = 4 - trailing;
    } else if ((hw & 0xF000u) == 0xC000u) {                /* STM, LDM */
        r.cls = K_LSM;
        r.words = popcount16(hw & 0xFFu);
        r.loads = (hw & 0x0800u) != 0;
    } else if ((hw & 0xF000u) == 0xD000u && (hw & 0x0E00u) != 0x0E00u) {   /* B<cond> */
        r.cls = K_COND_BRANCH;
    } else if ((hw & 0xF800u) == 0xE000u) {                /* B */
        r.cls = K_BRANCH;
    }
    return r;
}

/* Coprocessor space (FP, MVE): hw1 is 111x 11xx xxxx xxxx. */
static struct thumb_insn classify_coprocessor(uint32_t hw1, uint32_t hw2)
{
    struct thumb_insn r = {K_FP, 0, 0, 0, 0, 0};
    const int fp = ((hw2 >> 9) & 7u) == 5u;                /* coprocessor 10 or 11 */
    if ((hw1 & 0x0E00u) == 0x0C00u && (hw1 & 0x01E0u) != 0x0040u) {   /* loads and stores */
        const int load = (hw1 & 0x0010u) != 0;
        if (!fp) {
            r.cls = K_VECTOR;
            r.loads = load;
        } else if ((hw1 & 0x0120u) == 0x0100u) {           /* VLDR, VSTR */
            r.cls = load ? K_LOAD : K_STORE;
            r.loads = load;
            r.literal = load && (hw1 & 0xFu) == 15u;
        } else {                                           /* VLDM, VSTM, VPUSH, VPOP */
            r.cls = K_LSM;
            r.words = (int)(hw2 & 0xFFu);
            r.loads = load;
        }
    } else if (!fp) {
        r.cls = K_VECTOR;
    }
    return r;
}

/* Data-processing (register), hw1 = 1111 1010 xxxx xxxx: shifts, extends, parallel add/sub. */
static int class_fa(uint32_t hw1, uint32_t hw2)
{
    const uint32_t op1 = (hw1 >> 4) & 0xFu;
    const uint32_t op2 = (hw2 >> 4) & 0xFu;
    if (op1 >= 8u && op2 < 8u) {
        return K_SIMD;                                     /* parallel add/subtract */
    }
    if (op1 >= 8u && (op2 & 0xCu) == 8u) {                 /* miscellaneous operations */
        return (op1 == 8u || (op1 == 0xAu && op2 == 8u)) ? K_SIMD : K_ALU;  /* Q*, SEL; REV */
    }
    if ((op1 == 2u || op1 == 3u) && (op2 & 8u)) {
        return K_SIMD;                                     /* SXTAB16, UXTAB16, SXTB16, UXTB16 */
    }
    return K_ALU;
}

static struct thumb_insn classify_32(uint32_t hw1, uint32_t hw2)
{
    struct thumb_insn r = {K_ALU, 0, 0, 0, 0, 0};
    if ((hw1 & 0xEC00u) == 0xEC00u) {
        return classify_coprocessor(hw1, hw2);
    }
    if ((hw1 & 0xFE40u) == 0xE800u) {                      /* LDM, STM, PUSH.W, POP.W */
        r.cls = K_LSM;
        r.words = popcount16(hw2);
        r.loads = (hw1 & 0x0010u) != 0;
        r.pc_write = r.loads && (hw2 & 0x8000u);
    } else if ((hw1 & 0xFE40u) == 0xE840u) {               /* dual, exclusive, table branch */
        if ((hw1 & 0x0120u) != 0) {                        /* LDRD, STRD */
            r.cls = K_LSM;
            r.words = 2;
            r.loads = (hw1 & 0x0010u) != 0;
            r.literal = r.loads && (hw1 & 0xFu) == 15u;
        } else if ((hw1 & 0xFFF0u) == 0xE8D0u && (hw2 & 0xFFE0u) == 0xF000u) {
            r.cls = K_BRANCH;                              /* TBB, TBH: a load and a jump */
            r.loads = 1;
        } else {
            r.cls = (hw1 & 0x0010u) ? K_LOAD : K_STORE;    /* LDREX, STREX */
            r.loads = r.cls == K_LOAD;
        }
    } else if ((hw1 & 0xF800u) == 0xF000u && (hw2 & 0x8000u)) {   /* branches, misc control */
        const uint32_t kind = hw2 & 0xD000u;
        if (kind == 0x8000u) {
            r.cls = ((hw1 >> 7) & 7u) == 7u ? K_ALU : K_COND_BRANCH;   /* MSR/MRS/hints */
        } else {
            r.cls = K_BRANCH;                              /* B.W, BL */
        }
    } else if ((hw1 & 0xFF10u) == 0xF800u) {               /* STRB, STRH, STR */
        r.cls = K_STORE;
    } else if ((hw1 & 0xFE10u) == 0xF810u) {               /* loads and memory hints */
        const int rt_pc = (hw2 >> 12) == 15u;
        const int word = ((hw1 >> 5) & 3u) == 2u;
        r.cls = rt_pc && !word ? K_ALU : K_LOAD;           /* PLD, PLI */
        r.loads = r.cls == K_LOAD;
        r.literal = r.loads && (hw1 & 0xFu) == 15u;
        r.pc_write = rt_pc && word;
    } else if ((hw1 & 0xFF00u) == 0xFA00u) {
        r.cls = class_fa(hw1, hw2);
    } else if ((hw1 & 0xFF80u) == 0xFB00u) {               /* multiply, MAC, |difference| */
        const uint32_t op1 = (hw1 >> 4) & 7u;
        if (op1 == 0u) {
            r.cls = ((hw2 >> 4) & 3u) == 0u && (hw2 >> 12) == 15u ? K_MUL : K_MLA;
        } else {
            r.cls = op1 == 7u ? K_SIMD : K_DSP_MAC;        /* USAD8, USADA8 */
        }
    } else if ((hw1 & 0xFF80u) == 0xFB80u) {               /* long multiply, divide */
        const uint32_t op1 = (hw1 >> 4) & 7u;
        r.cls = (op1 == 1u || op1 == 3u) ? K_DIV : K_LONG_MUL;
    } else if ((hw1 & 0xEE00u) == 0xEA00u) {               /* data processing (shifted reg) */
        r.pc_write = ((hw2 >> 8) & 0xFu) == 15u && (hw1 & 0x01E0u) == 0x0040u;  /* MOV pc */
    }
    return r;
}

#endif /* TINYENGINE_THUMB_CLASSES_H */
