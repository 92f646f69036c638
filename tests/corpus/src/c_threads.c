/* wasi-threads: pthreads over the `wasi::thread-spawn` import, the exported `wasi_thread_start` and
 * an imported shared memory. Built by build.sh's wasi-threads section (not by the plain clang loop).
 * argv[1] picks the test; each prints a known answer and exits 0:
 *   counter [T K]    T threads x K C11 atomic increments          -> "counter total=T*K"
 *   mutex [T K]      T threads x K inserts into a mutex-guarded hash table
 *                    -> "mutex items=T*K checksum=S" (S: sum of mix(key), order independent)
 *   queue [P C K]    P producers push 1..P*K through a 16-slot ring buffer (mutex + 2 condvars),
 *                    C consumers sum what they pop -> "queue count=P*K sum=N*(N+1)/2"
 *   single           no threads at all -> "ok" (runs where thread-spawn is unavailable)
 * Defaults: counter 4 10000 -> total=40000; mutex 4 1000 -> items=4000 checksum=see mix();
 * queue 2 2 1000 -> count=2000 sum=2001000. Exit 1 on a wrong answer or a failed pthread call. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define STACK_SIZE (64 * 1024)

static pthread_attr_t attr;

static void spawn(pthread_t *t, void *(*fn)(void *), void *arg) {
    int rc = pthread_create(t, &attr, fn, arg);
    if (rc != 0) {
        printf("pthread_create failed: %d (%s)\n", rc, strerror(rc));
        exit(1);
    }
}

static void join(pthread_t t) {
    int rc = pthread_join(t, NULL);
    if (rc != 0) {
        printf("pthread_join failed: %d\n", rc);
        exit(1);
    }
}

static int arg(int argc, char **argv, int i, int dflt) {
    int v = argc > i ? atoi(argv[i]) : dflt;
    return v < 1 ? 1 : v;
}

/* ---- counter ---- */
static atomic_int counter;
static int counter_k;

static void *counter_worker(void *p) {
    (void)p;
    for (int i = 0; i < counter_k; i++) atomic_fetch_add(&counter, 1);
    return NULL;
}

static int test_counter(int t, int k) {
    pthread_t th[MAX_THREADS];
    counter_k = k;
    for (int i = 0; i < t; i++) spawn(&th[i], counter_worker, NULL);
    for (int i = 0; i < t; i++) join(th[i]);
    int total = atomic_load(&counter);
    printf("counter total=%d\n", total);
    return total == t * k ? 0 : 1;
}

/* ---- mutex: chained hash table, nodes from malloc (so malloc runs on several threads) ---- */
#define BUCKETS 256
struct node { uint32_t key; struct node *next; };
static struct node *table[BUCKETS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int mutex_k;
static int items;

static uint32_t mix(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
    return x;
}

static void *mutex_worker(void *p) {
    uint32_t base = (uint32_t)(uintptr_t)p * (uint32_t)mutex_k;
    for (int i = 0; i < mutex_k; i++) {
        struct node *n = malloc(sizeof *n);
        if (!n) { printf("malloc failed\n"); exit(1); }
        n->key = base + (uint32_t)i;
        uint32_t b = mix(n->key) % BUCKETS;
        pthread_mutex_lock(&table_lock);
        n->next = table[b];
        table[b] = n;
        items++;  /* a plain int: only the mutex keeps this exact */
        pthread_mutex_unlock(&table_lock);
    }
    return NULL;
}

static int test_mutex(int t, int k) {
    pthread_t th[MAX_THREADS];
    mutex_k = k;
    for (int i = 0; i < t; i++) spawn(&th[i], mutex_worker, (void *)(uintptr_t)i);
    for (int i = 0; i < t; i++) join(th[i]);
    uint32_t n = (uint32_t)t * (uint32_t)k, count = 0;
    uint64_t sum = 0, want = 0;
    unsigned char *seen = calloc(n, 1);
    int ok = seen != NULL;
    for (int b = 0; b < BUCKETS; b++)
        for (struct node *e = table[b]; e; e = e->next) {
            count++;
            sum += mix(e->key);
            if (ok && (e->key >= n || seen[e->key]++ || mix(e->key) % BUCKETS != (uint32_t)b)) ok = 0;
        }
    for (uint32_t key = 0; key < n; key++) want += mix(key);
    printf("mutex items=%u checksum=%llu\n", count, (unsigned long long)sum);
    return ok && count == n && items == (int)n && sum == want ? 0 : 1;
}

/* ---- queue: bounded ring buffer, pthread_mutex + pthread_cond ---- */
#define SLOTS 16
static uint32_t ring[SLOTS];
static int head, tail, filled;
static int q_total, q_popped;
static int q_k;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
struct consumer { pthread_t th; uint64_t sum; int count; };

static void *producer(void *p) {
    uint32_t base = (uint32_t)(uintptr_t)p * (uint32_t)q_k;
    for (int i = 0; i < q_k; i++) {
        pthread_mutex_lock(&q_lock);
        while (filled == SLOTS) pthread_cond_wait(&not_full, &q_lock);
        ring[tail] = base + (uint32_t)i + 1;
        tail = (tail + 1) % SLOTS;
        filled++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&q_lock);
    }
    return NULL;
}

static void *consumer(void *p) {
    struct consumer *c = p;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (filled == 0 && q_popped < q_total) pthread_cond_wait(&not_empty, &q_lock);
        if (filled == 0) {  /* everything was popped */
            pthread_mutex_unlock(&q_lock);
            return NULL;
        }
        uint32_t v = ring[head];
        head = (head + 1) % SLOTS;
        filled--;
        if (++q_popped == q_total) pthread_cond_broadcast(&not_empty);  /* wake the idle ones */
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&q_lock);
        c->sum += v;
        c->count++;
    }
}

static int test_queue(int np, int nc, int k) {
    pthread_t prod[MAX_THREADS];
    struct consumer cons[MAX_THREADS];
    q_k = k;
    q_total = np * k;
    memset(cons, 0, sizeof cons);
    for (int i = 0; i < nc; i++) spawn(&cons[i].th, consumer, &cons[i]);
    for (int i = 0; i < np; i++) spawn(&prod[i], producer, (void *)(uintptr_t)i);
    for (int i = 0; i < np; i++) join(prod[i]);
    uint64_t sum = 0;
    int count = 0;
    for (int i = 0; i < nc; i++) {
        join(cons[i].th);
        sum += cons[i].sum;
        count += cons[i].count;
    }
    uint64_t n = (uint64_t)q_total;
    printf("queue count=%d sum=%llu\n", count, (unsigned long long)sum);
    return count == q_total && sum == n * (n + 1) / 2 ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *test = argc > 1 ? argv[1] : "single";
    if (strcmp(test, "single") == 0) {
        printf("ok\n");
        return 0;
    }
    pthread_attr_init(&attr);
    if (pthread_attr_setstacksize(&attr, STACK_SIZE) != 0) {
        printf("pthread_attr_setstacksize failed\n");
        return 1;
    }
    if (strcmp(test, "counter") == 0) {
        int t = arg(argc, argv, 2, 4);
        return test_counter(t > MAX_THREADS ? MAX_THREADS : t, arg(argc, argv, 3, 10000));
    }
    if (strcmp(test, "mutex") == 0) {
        int t = arg(argc, argv, 2, 4);
        return test_mutex(t > MAX_THREADS ? MAX_THREADS : t, arg(argc, argv, 3, 1000));
    }
    if (strcmp(test, "queue") == 0) {
        int p = arg(argc, argv, 2, 2), c = arg(argc, argv, 3, 2);
        return test_queue(p > MAX_THREADS ? MAX_THREADS : p, c > MAX_THREADS ? MAX_THREADS : c,
                          arg(argc, argv, 4, 1000));
    }
    printf("usage: c_threads single | counter [T K] | mutex [T K] | queue [P C K]\n");
    return 2;
}
