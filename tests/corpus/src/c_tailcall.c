/* build: -mtail-call */
/* A bytecode interpreter in tail-call threading: each handler tail-calls the next (clang's musttail,
   which -mtail-call turns into return_call / return_call_indirect). Runs a small program that sums
   and mixes numbers for a million steps (more by argv[1]), and a 3-million-deep tail recursion. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { uint64_t acc; uint32_t i, n; } State;
typedef uint64_t (*Op)(State *s, const uint8_t *pc);

static uint64_t op_add(State *s, const uint8_t *pc);
static uint64_t op_mix(State *s, const uint8_t *pc);
static uint64_t op_loop(State *s, const uint8_t *pc);
static uint64_t op_halt(State *s, const uint8_t *pc);
static const Op table[] = {op_add, op_mix, op_loop, op_halt};
static const uint8_t program[] = {0, 1, 0, 2, 3};

#define DISPATCH(pc) __attribute__((musttail)) return table[*(pc)](s, (pc))

static uint64_t op_add(State *s, const uint8_t *pc) { s->acc += s->i * 2654435761u; DISPATCH(pc + 1); }
static uint64_t op_mix(State *s, const uint8_t *pc) { s->acc ^= s->acc >> 17; s->acc *= 0x9E3779B97F4A7C15ull; DISPATCH(pc + 1); }
static uint64_t op_loop(State *s, const uint8_t *pc) {
    if (++s->i < s->n) { DISPATCH(program); }
    DISPATCH(pc + 1);
}
static uint64_t op_halt(State *s, const uint8_t *pc) { (void)pc; return s->acc; }

static uint64_t count_down(uint64_t n, uint64_t acc) {
    if (n == 0) return acc;
    __attribute__((musttail)) return count_down(n - 1, acc + n);
}

int main(int argc, char **argv) {
    State s = {0, 0, 1000000 + (argc > 1 ? (uint32_t)atoi(argv[1]) * 1000 : 0)};
    uint64_t r = table[program[0]](&s, program);
    printf("interpreter: %llu\n", (unsigned long long)r);
    printf("count_down: %llu\n", (unsigned long long)count_down(3000000, 0));
    return 0;
}
