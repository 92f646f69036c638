/* argv and the environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=<%s> len=%zu\n", i, argv[i], strlen(argv[i]));
    const char *keys[] = {"HOME", "GREETING", "EMPTY", "NUM", "UNSET_VAR"};
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(keys[i]);
        printf("%s=%s\n", keys[i], v ? v : "(unset)");
    }
    int n = 0;
    while (environ[n]) n++;
    char **copy = malloc((n + 1) * sizeof *copy);
    memcpy(copy, environ, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, cmp_str);
    printf("environ has %d entries\n", n);
    for (int i = 0; i < n; i++) printf("  %s\n", copy[i]);
    long num = getenv("NUM") ? strtol(getenv("NUM"), NULL, 10) : 0;
    long acc = 0;
    for (int i = 1; i < argc; i++) acc = acc * 31 + strtol(argv[i], NULL, 0);
    printf("NUM*2=%ld argsum=%ld\n", num * 2, acc);
    return 0;
}
