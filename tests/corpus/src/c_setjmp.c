/* setjmp/longjmp through wasm exception handling (clang's -mllvm -wasm-enable-sjlj, exnref form:
 * longjmp is a `throw` of the __c_longjmp tag, setjmp's frames catch it in a try_table; build.sh).
 * Usage: c_setjmp [N]   N (default 5) varies depths, values and loop counts. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf top;
static int frames_entered, frames_left;

/* 1. longjmp out of a recursion of 10+N frames, back to a setjmp in the caller */
static void descend(int level, int max) {
    frames_entered++;
    if (level == max) longjmp(top, 100 + level);
    descend(level + 1, max);
    frames_left++; /* never runs: longjmp skips the rest of every frame */
}

static void test_deep(int n) {
    volatile int tries = 0;
    int r = setjmp(top);
    tries++;
    if (r == 0) {
        descend(0, 10 + n);
        printf("not reached\n");
    }
    printf("[1] deep: setjmp returned %d after %d frames, left=%d, tries=%d\n", r, frames_entered, frames_left,
           tries);
}

/* 2. longjmp(env, 0) makes setjmp return 1 */
static void test_zero(void) {
    jmp_buf env;
    int r = setjmp(env);
    if (r == 0) longjmp(env, 0);
    printf("[2] longjmp(env, 0): setjmp returned %d\n", r);
}

/* 3. a loop driven by longjmp: the same setjmp returns N+3 times; volatile locals keep their values */
static void again(jmp_buf env, int v) { longjmp(env, v); }

static void test_loop(int n) {
    jmp_buf env;
    volatile int count = 0;
    volatile long sum = 0;
    int r = setjmp(env);
    sum += r;
    if (count < n + 3) {
        count++;
        again(env, count * 7);
    }
    printf("[3] loop: count=%d sum=%ld last=%d\n", count, (long)sum, r);
}

/* 4. nested handlers: an inner setjmp/longjmp pair inside a function that later jumps to the outer one */
static jmp_buf *handler; /* the innermost active "try" */

static int risky(int v) {
    if (v % 3 == 0) longjmp(*handler, v);
    return v * 2;
}

static int guarded(int v, int *failed) {
    jmp_buf env;
    jmp_buf *saved = handler;
    volatile int result = -1;
    handler = &env;
    int r = setjmp(env);
    if (r == 0) {
        result = risky(v);
        *failed = 0;
    } else {
        *failed = r;
    }
    handler = saved;
    return result;
}

static void test_nested(int n) {
    jmp_buf outer;
    jmp_buf *saved = handler;
    volatile int total = 0, fails = 0;
    handler = &outer;
    int r = setjmp(outer);
    if (r == 0) {
        for (int v = n; v < n + 8; v++) {
            int failed;
            int x = guarded(v, &failed);
            if (failed) fails++;
            else total += x;
        }
        risky(3 * n + 3); /* no inner handler now: jumps to `outer` */
        printf("not reached\n");
    }
    handler = saved;
    printf("[4] nested: total=%d fails=%d outer got %d\n", total, fails, r);
}

/* 5. longjmp through a function pointer and several intermediate frames */
static jmp_buf env5;
static int leaf(int v) {
    if (v > 4) longjmp(env5, v);
    return v;
}
static int apply_depth(int v);
static int apply(int (*f)(int), int v) { return f(v) + apply_depth(v); }
static int apply_depth(int v) { return v > 0 ? leaf(v) : 0; }

static void test_indirect(int n) {
    volatile int acc = 0;
    int (*fns[2])(int) = {leaf, apply_depth};
    for (int i = 0; i < 6; i++) {
        int r = setjmp(env5);
        if (r == 0) acc += apply(fns[i % 2], i + n % 3);
        else acc += 1000 * r;
    }
    printf("[5] indirect: acc=%d\n", acc);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5;
    if (n < 0) n = -n;
    n %= 64;
    printf("c_setjmp n=%d\n", n);
    test_deep(n);
    test_zero();
    test_loop(n);
    test_nested(n);
    test_indirect(n);
    printf("done\n");
    return 0;
}
