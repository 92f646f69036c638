/* A tiny stack-machine interpreter running a few hand-assembled programs. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

enum { PUSH, POP, ADD, SUB, MUL, DIVM, MODM, DUP, SWAP, OVER, JMP, JZ, JNZ, LT, LOAD, STORE, PRINT, HALT, CALL, RET };

typedef struct { int op; int64_t arg; } insn;

static int64_t run(const insn *code, int trace) {
    int64_t stack[256], vars[16] = {0};
    int rstack[64];
    int sp = 0, rsp = 0, pc = 0;
    long steps = 0;
    for (;;) {
        insn in = code[pc++];
        steps++;
        switch (in.op) {
        case PUSH: stack[sp++] = in.arg; break;
        case POP: sp--; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case DIVM: sp--; stack[sp - 1] /= stack[sp]; break;
        case MODM: sp--; stack[sp - 1] %= stack[sp]; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case SWAP: { int64_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; } break;
        case OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case JMP: pc = (int)in.arg; break;
        case JZ: if (stack[--sp] == 0) pc = (int)in.arg; break;
        case JNZ: if (stack[--sp] != 0) pc = (int)in.arg; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case LOAD: stack[sp++] = vars[in.arg]; break;
        case STORE: vars[in.arg] = stack[--sp]; break;
        case PRINT: if (trace) printf("  out: %lld\n", (long long)stack[sp - 1]); sp--; break;
        case CALL: rstack[rsp++] = pc; pc = (int)in.arg; break;
        case RET: pc = rstack[--rsp]; break;
        case HALT: printf("  halted after %ld steps, sp=%d\n", steps, sp); return sp ? stack[sp - 1] : 0;
        }
    }
}

int main(void) {
    /* count primes below 3000 by trial division; jump targets patched as emitted */
    insn prog[64];
    int k = 0;
#define E(o, a) (prog[k].op = (o), prog[k].arg = (a), k++)
    E(PUSH, 0); E(STORE, 0);
    E(PUSH, 2); E(STORE, 1);
    int loop = k;
    E(LOAD, 1); E(PUSH, 3000); E(LT, 0); int jend = k; E(JZ, 0);
    E(PUSH, 2); E(STORE, 2);
    int inner = k;
    E(LOAD, 1); E(LOAD, 2); E(LOAD, 2); E(MUL, 0); E(LT, 0); int jprime = k; E(JNZ, 0);
    E(LOAD, 1); E(LOAD, 2); E(MODM, 0); int jcomp = k; E(JZ, 0);
    E(LOAD, 2); E(PUSH, 1); E(ADD, 0); E(STORE, 2); E(JMP, inner);
    prog[jprime].arg = k;
    E(LOAD, 0); E(PUSH, 1); E(ADD, 0); E(STORE, 0);
    prog[jcomp].arg = k;
    E(LOAD, 1); E(PUSH, 1); E(ADD, 0); E(STORE, 1); E(JMP, loop);
    prog[jend].arg = k;
    E(LOAD, 0); E(HALT, 0);
    printf("primes below 3000:\n");
    printf("  result %lld\n", (long long)run(prog, 0));

    /* iterative fibonacci printing every 10th, via a subroutine */
    k = 0;
    E(PUSH, 0); E(STORE, 0); E(PUSH, 1); E(STORE, 1); E(PUSH, 0); E(STORE, 2);
    int floop = k;
    E(LOAD, 2); E(PUSH, 90); E(LT, 0); int fend = k; E(JZ, 0);
    int callsite = k; E(CALL, 0);
    E(LOAD, 2); E(PUSH, 10); E(MODM, 0); int skip = k; E(JNZ, 0);
    E(LOAD, 0); E(PRINT, 0);
    prog[skip].arg = k;
    E(LOAD, 2); E(PUSH, 1); E(ADD, 0); E(STORE, 2); E(JMP, floop);
    prog[fend].arg = k;
    E(LOAD, 0); E(HALT, 0);
    prog[callsite].arg = k;  /* subroutine: (a, b) = (b, a + b) */
    E(LOAD, 0); E(LOAD, 1); E(DUP, 0); E(STORE, 0); E(ADD, 0); E(STORE, 1); E(RET, 0);
    printf("fibonacci:\n");
    printf("  result %lld\n", (long long)run(prog, 1));

    /* collatz lengths summed for 1..2000 */
    k = 0;
    E(PUSH, 0); E(STORE, 3); E(PUSH, 1); E(STORE, 0);
    int outer = k;
    E(LOAD, 0); E(PUSH, 2001); E(LT, 0); int cend = k; E(JZ, 0);
    E(LOAD, 0); E(STORE, 1);
    int cl = k;
    E(LOAD, 1); E(PUSH, 1); E(SUB, 0); int cdone = k; E(JZ, 0);
    E(LOAD, 3); E(PUSH, 1); E(ADD, 0); E(STORE, 3);
    E(LOAD, 1); E(PUSH, 2); E(MODM, 0); int odd = k; E(JNZ, 0);
    E(LOAD, 1); E(PUSH, 2); E(DIVM, 0); E(STORE, 1); E(JMP, cl);
    prog[odd].arg = k;
    E(LOAD, 1); E(PUSH, 3); E(MUL, 0); E(PUSH, 1); E(ADD, 0); E(STORE, 1); E(JMP, cl);
    prog[cdone].arg = k;
    E(LOAD, 0); E(PUSH, 1); E(ADD, 0); E(STORE, 0); E(JMP, outer);
    prog[cend].arg = k;
    E(LOAD, 3); E(HALT, 0);
    printf("collatz total steps 1..2000:\n");
    printf("  result %lld\n", (long long)run(prog, 0));
    return 0;
}
