/* C strings and UTF-8: decoding, counting, case mapping, formatting, parsing. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int utf8_decode(const unsigned char *s, unsigned *cp) {
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if ((s[0] & 0xe0) == 0xc0) { *cp = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu); return 2; }
    if ((s[0] & 0xf0) == 0xe0) { *cp = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu); return 3; }
    *cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
    return 4;
}

int main(void) {
    const char *texts[] = {"hello, world", "Grüße aus Köln", "日本語のテキスト", "emoji: 🎉🚀 ok", "", "ÀÉÎÕÜ ß"};
    for (int t = 0; t < 6; t++) {
        const unsigned char *s = (const unsigned char *)texts[t];
        int chars = 0;
        unsigned maxcp = 0, sum = 0;
        for (int i = 0; s[i];) {
            unsigned cp;
            i += utf8_decode(s + i, &cp);
            chars++;
            sum += cp;
            if (cp > maxcp) maxcp = cp;
        }
        printf("[%s] bytes=%zu chars=%d max=U+%04X sum=%u\n", texts[t], strlen(texts[t]), chars, maxcp, sum);
    }
    char buf[128];
    strcpy(buf, "The Quick Brown Fox");
    for (char *p = buf; *p; p++) *p = (char)toupper((unsigned char)*p);
    printf("upper: %s\n", buf);
    for (char *p = buf; *p; p++) *p = (char)tolower((unsigned char)*p);
    printf("lower: %s\n", buf);
    /* reverse words in place */
    char sentence[] = "one two three four five";
    char *words[8];
    int nw = 0;
    for (char *tok = strtok(sentence, " "); tok; tok = strtok(NULL, " ")) words[nw++] = tok;
    printf("reversed:");
    for (int i = nw - 1; i >= 0; i--) printf(" %s", words[i]);
    printf("\n");
    printf("strstr: %s\n", strstr("haystack with needle inside", "needle"));
    printf("strchr: %s | strrchr: %s\n", strchr("a/b/c", '/'), strrchr("a/b/c", '/'));
    printf("strcmp: %d %d %d\n", strcmp("abc", "abd") < 0, strcmp("b", "a") > 0, strcmp("same", "same"));
    printf("strncmp: %d memcmp: %d\n", strncmp("prefix-a", "prefix-b", 6), memcmp("\x01\x02", "\x01\x03", 2) < 0);
    printf("strtol: %ld %ld %ld %lu\n", strtol("  -1234xyz", NULL, 10), strtol("0x1F", NULL, 16),
           strtol("0777", NULL, 0), strtoul("4294967295", NULL, 10));
    printf("strtod: %.6f %g %g\n", strtod("3.14159abc", NULL), strtod("-1.5e-3", NULL), strtod("1e400", NULL));
    printf("atoi: %d\n", atoi("  42 apples"));
    int w = snprintf(buf, 10, "%s-%d-%s", "truncated", 12345, "string");
    printf("snprintf wanted=%d got=[%s]\n", w, buf);
    printf("pad: [%-8s] [%8s] [%.3s] [%c] [%5.1f%%]\n", "left", "right", "precision", 'Z', 99.44);
    printf("ints: [%5d] [%-5d] [%05d] [%+d] [%x] [%X] [%o] [%#x] [%lld]\n", 42, 42, 42, 42, 255, 255, 8, 255,
           -9000000000LL);
    char *dup = strdup("duplicate me");
    dup[0] = 'D';
    printf("%s (%zu)\n", dup, strlen(dup));
    free(dup);
    return 0;
}
