/* Branchy, data-dependent control flow: a tiny register-machine bytecode interpreter (a switch on
 * the opcode, which clang turns into br_table) running a Collatz program over numbers that depend
 * on the seed. Each lane takes its own path through the bytecode. */
#include "common.h"

enum { HALT, MOVI, MOV, ADD, ADDI, SUB, MUL, MULI, AND, ANDI, XOR, SHRI, SHLI, JMP, JZ, JNZ, JEQI, JLT };

/* One 32-bit word per instruction: op | a << 8 | b << 16 | c << 24 (c: an immediate or a target). */
#define I(op, a, b, c) ((u32)(op) | (u32)(a) << 8 | (u32)(b) << 16 | (u32)(c) << 24)

/* r0: next start, r1: numbers left, r2: total steps, r3: x, r4: scratch, r5: checksum, r6: max x */
RODATA u32 PROGRAM[] = {
    /*  0 */ I(MOV, 3, 0, 0),      /* x = start */
    /*  1 */ I(JEQI, 3, 1, 11),    /* loop: if x == 1 goto done */
    /*  2 */ I(ANDI, 4, 3, 1),     /* t = x & 1 */
    /*  3 */ I(JZ, 4, 0, 8),       /* if even goto even */
    /*  4 */ I(MULI, 3, 3, 3),     /* x = 3x */
    /*  5 */ I(ADDI, 3, 3, 1),     /* x += 1 */
    /*  6 */ I(JLT, 6, 3, 15),     /* if max < x goto newmax */
    /*  7 */ I(JMP, 0, 0, 9),
    /*  8 */ I(SHRI, 3, 3, 1),     /* even: x >>= 1 */
    /*  9 */ I(ADDI, 2, 2, 1),     /* steps++ */
    /* 10 */ I(JMP, 0, 0, 1),
    /* 11 */ I(MUL, 4, 2, 0),      /* done: checksum = (checksum << 1 ^ steps * start) */
    /* 12 */ I(SHLI, 5, 5, 1),
    /* 13 */ I(XOR, 5, 5, 4),
    /* 14 */ I(JMP, 0, 0, 17),
    /* 15 */ I(MOV, 6, 3, 0),      /* newmax: max = x */
    /* 16 */ I(JMP, 0, 0, 9),
    /* 17 */ I(ADDI, 0, 0, 1),     /* start++ */
    /* 18 */ I(ADDI, 1, 1, 0xFF),  /* left-- (immediates are signed bytes) */
    /* 19 */ I(JNZ, 1, 0, 0),
    /* 20 */ I(HALT, 0, 0, 0),
};

FN NOINLINE u64 interpret(const u32 *code, u64 *r) {
    u32 pc = 0;
    u64 executed = 0;
    for (;;) {
        u32 w = code[pc++];
        u32 a = (w >> 8) & 255, b = (w >> 16) & 255, c = w >> 24;
        u64 imm = (u64)(i64)(signed char)(u8)c;
        executed++;
        switch (w & 255) {
        case HALT: return executed;
        case MOVI: r[a] = imm; break;
        case MOV: r[a] = r[b]; break;
        case ADD: r[a] = r[b] + r[c & 7]; break;
        case ADDI: r[a] = r[b] + imm; break;
        case SUB: r[a] = r[b] - r[c & 7]; break;
        case MUL: r[a] = r[b] * r[c & 7]; break;
        case MULI: r[a] = r[b] * imm; break;
        case AND: r[a] = r[b] & r[c & 7]; break;
        case ANDI: r[a] = r[b] & imm; break;
        case XOR: r[a] = r[b] ^ r[c & 7]; break;
        case SHRI: r[a] = r[b] >> (c & 63); break;
        case SHLI: r[a] = r[b] << (c & 63); break;
        case JMP: pc = c; break;
        case JZ: if (r[a] == 0) pc = c; break;
        case JNZ: if (r[a] != 0) pc = c; break;
        case JEQI: if (r[a] == b) pc = c; break;
        case JLT: if (r[a] < r[b]) pc = c; break;
        default: return ~0ull;
        }
    }
}

EXPORT i64 run(i32 seed) {
    u64 r[8];
    for (u32 i = 0; i < 8; i++) r[i] = 0;
    r[0] = 100000u + ((u32)seed & 0xFFFFu) * 37u;
    r[1] = 1280;
    u64 executed = interpret(PROGRAM, r);
    return (i64)(r[5] ^ (r[2] << 20) ^ (r[6] << 7) ^ executed);
}
