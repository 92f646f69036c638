/* qsort and bsearch over integers, strings and structs from a fixed LCG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned lcg_state = 12345;
static unsigned lcg(void) { lcg_state = lcg_state * 1103515245u + 12345u; return (lcg_state >> 8) & 0xffffff; }

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
struct rec { int key; int seq; };
static int cmp_rec(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->seq - y->seq;
}

int main(void) {
    enum { N = 50000 };
    int *a = malloc(N * sizeof *a);
    for (int i = 0; i < N; i++) a[i] = (int)(lcg() % 1000000) - 500000;
    qsort(a, N, sizeof *a, cmp_int);
    long long sum = 0, wsum = 0;
    for (int i = 0; i < N; i++) { sum += a[i]; wsum += (long long)a[i] * (i % 97); }
    int sorted = 1;
    for (int i = 1; i < N; i++) if (a[i - 1] > a[i]) sorted = 0;
    printf("ints: sorted=%d min=%d max=%d median=%d sum=%lld wsum=%lld\n", sorted, a[0], a[N - 1], a[N / 2], sum, wsum);
    int probe = a[12345];
    int *hit = bsearch(&probe, a, N, sizeof *a, cmp_int);
    printf("bsearch found=%d value=%d\n", hit != NULL, hit ? *hit : 0);
    int missing = 600000;
    printf("bsearch missing=%d\n", bsearch(&missing, a, N, sizeof *a, cmp_int) != NULL);
    free(a);

    const char *words[] = {"pear", "apple", "fig", "banana", "Cherry", "date", "apple", "elderberry",
                           "grape", "kiwi", "Lemon", "mango", "", "zucchini", "yam", "apricot"};
    int nw = (int)(sizeof words / sizeof words[0]);
    qsort(words, nw, sizeof words[0], cmp_str);
    for (int i = 0; i < nw; i++) printf("%s%s", i ? "," : "words: ", words[i]);
    printf("\n");

    struct rec *r = malloc(1000 * sizeof *r);
    for (int i = 0; i < 1000; i++) { r[i].key = (int)(lcg() % 10); r[i].seq = i; }
    qsort(r, 1000, sizeof *r, cmp_rec);
    unsigned h = 2166136261u;
    for (int i = 0; i < 1000; i++) { h = (h ^ (unsigned)r[i].key) * 16777619u; h = (h ^ (unsigned)r[i].seq) * 16777619u; }
    printf("recs: first=(%d,%d) last=(%d,%d) fnv=%08x\n", r[0].key, r[0].seq, r[999].key, r[999].seq, h);
    free(r);
    return 0;
}
