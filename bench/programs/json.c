/* A mixed, real-world-like program: write a JSON document from seed-driven records, tokenize it
 * (strings with escapes, integers and decimals, literals, punctuation), hash the keys and string
 * values, collect the numbers, sort them (shell sort) and checksum everything. */
#include "common.h"

#define DOC 12288u
#define MAXNUM 2048u
#define DOCS 24u

RODATA char KEYS[] = "id\0name\0tags\0score\0ok\0values\0";
RODATA u8 KEY_OFF[] = {0, 3, 8, 13, 19, 22};

FN u32 put_byte(u8 *d, u32 pos, u32 c) { d[pos] = (u8)c; return pos + 1; }

FN u32 put_key(u8 *d, u32 pos, u32 k) {
    pos = put_byte(d, pos, '"');
    for (const char *s = KEYS + KEY_OFF[k]; *s; s++) pos = put_byte(d, pos, (u8)*s);
    pos = put_byte(d, pos, '"');
    return put_byte(d, pos, ':');
}

FN u32 put_uint(u8 *d, u32 pos, u32 v) {
    u8 tmp[10];
    u32 n = 0;
    do { tmp[n++] = (u8)('0' + v % 10); v /= 10; } while (v);
    while (n) pos = put_byte(d, pos, tmp[--n]);
    return pos;
}

FN u32 put_word(u8 *d, u32 pos, u32 *st) {
    u32 r = xorshift32(st);
    u32 len = 3 + r % 9;
    pos = put_byte(d, pos, '"');
    for (u32 i = 0; i < len; i++) {
        r = r * 1103515245u + 12345u;
        u32 c = (r >> 16) % 30;
        if (c < 26) pos = put_byte(d, pos, 'a' + c);
        else if (c < 28) pos = put_byte(d, pos, ' ');
        else { pos = put_byte(d, pos, '\\'); pos = put_byte(d, pos, c == 28 ? '"' : 'n'); }
    }
    return put_byte(d, pos, '"');
}

FN u32 put_space(u8 *d, u32 pos, u32 *st) {
    u32 r = xorshift32(st) & 15;
    if (r < 10) return pos;
    if (r < 14) return put_byte(d, pos, ' ');
    pos = put_byte(d, pos, '\n');
    return put_byte(d, pos, ' ');
}

FN u32 generate(u8 *d, u32 *st) {
    u32 pos = put_byte(d, 0, '[');
    u32 id = 0;
    while (pos < DOC - 400) {
        if (id) pos = put_byte(d, pos, ',');
        pos = put_space(d, pos, st);
        pos = put_byte(d, pos, '{');
        pos = put_key(d, pos, 0);
        pos = put_uint(d, pos, id++ * 7 + (*st & 3));
        pos = put_byte(d, pos, ',');
        pos = put_key(d, pos, 1);
        pos = put_word(d, pos, st);
        pos = put_byte(d, pos, ',');
        pos = put_space(d, pos, st);
        pos = put_key(d, pos, 2);
        pos = put_byte(d, pos, '[');
        u32 ntags = xorshift32(st) % 4;
        for (u32 t = 0; t < ntags; t++) {
            if (t) pos = put_byte(d, pos, ',');
            pos = put_word(d, pos, st);
        }
        pos = put_byte(d, pos, ']');
        pos = put_byte(d, pos, ',');
        pos = put_key(d, pos, 3);
        u32 r = xorshift32(st);
        if (r & 1) pos = put_byte(d, pos, '-');
        pos = put_uint(d, pos, (r >> 1) % 100000);
        if (r & 2) { pos = put_byte(d, pos, '.'); pos = put_uint(d, pos, 10 + (r >> 20) % 90); }
        pos = put_byte(d, pos, ',');
        pos = put_key(d, pos, 4);
        if (r & 4) { pos = put_byte(d, pos, 't'); pos = put_byte(d, pos, 'r'); pos = put_byte(d, pos, 'u'); }
        else { pos = put_byte(d, pos, 'f'); pos = put_byte(d, pos, 'a'); pos = put_byte(d, pos, 'l'); pos = put_byte(d, pos, 's'); }
        pos = put_byte(d, pos, 'e');
        pos = put_byte(d, pos, ',');
        pos = put_key(d, pos, 5);
        pos = put_byte(d, pos, '[');
        u32 nv = 1 + xorshift32(st) % 6;
        for (u32 v = 0; v < nv; v++) {
            if (v) { pos = put_byte(d, pos, ','); pos = put_space(d, pos, st); }
            pos = put_uint(d, pos, xorshift32(st) % 5000);
        }
        pos = put_byte(d, pos, ']');
        pos = put_byte(d, pos, '}');
    }
    pos = put_byte(d, pos, ']');
    return pos;
}

typedef struct {
    u64 hash;     /* FNV-1a over keys and strings, in order */
    u32 counts[8]; /* tokens by kind */
    u32 nnum;
    i32 nums[MAXNUM];
} Tokens;

FN i32 tokenize(const u8 *d, u32 len, Tokens *t) {
    u32 i = 0;
    while (i < len) {
        u32 c = d[i];
        switch (c) {
        case ' ': case '\n': case '\t': case '\r': i++; break;
        case '{': case '}': case '[': case ']': case ':': case ',':
            t->counts[0]++;
            t->hash = (t->hash ^ c) * 0x100000001B3ull;
            i++;
            break;
        case '"': {
            u64 h = 0xCBF29CE484222325ull;
            i++;
            while (i < len && d[i] != '"') {
                u32 ch = d[i];
                if (ch == '\\') { i++; ch = d[i] == 'n' ? '\n' : d[i]; }
                h = (h ^ ch) * 0x100000001B3ull;
                i++;
            }
            if (i >= len) return -1;
            i++;
            u32 j = i;
            while (j < len && (d[j] == ' ' || d[j] == '\n')) j++;
            u32 is_key = j < len && d[j] == ':';
            t->counts[1 + is_key]++;
            t->hash = rotl64(t->hash, 5) ^ h ^ is_key;
            break;
        }
        case '-': case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9': {
            i32 neg = c == '-';
            if (neg) i++;
            i32 v = 0;
            while (i < len && d[i] >= '0' && d[i] <= '9') v = v * 10 + (d[i++] - '0');
            v *= 100;
            if (i < len && d[i] == '.') {
                i++;
                i32 scale = 10;
                while (i < len && d[i] >= '0' && d[i] <= '9') { v += (d[i++] - '0') * scale; scale /= 10; }
                t->counts[4]++;
            }
            t->counts[3]++;
            if (t->nnum < MAXNUM) t->nums[t->nnum++] = neg ? -v : v;
            break;
        }
        case 't': case 'f': case 'n': {
            u32 want = c == 'f' ? 5 : 4;
            u32 k = 0;
            while (i + k < len && d[i + k] >= 'a' && d[i + k] <= 'z') k++;
            if (k != want) return -2;
            t->counts[5 + (c == 't')]++;
            i += k;
            break;
        }
        default:
            return -3;
        }
    }
    return 0;
}

FN void shell_sort(i32 *a, u32 n) {
    u32 gap = 1;
    while (gap < n / 3) gap = gap * 3 + 1;
    for (; gap > 0; gap /= 3)
        for (u32 i = gap; i < n; i++) {
            i32 v = a[i];
            u32 j = i;
            while (j >= gap && a[j - gap] > v) { a[j] = a[j - gap]; j -= gap; }
            a[j] = v;
        }
}

EXPORT i64 run(i32 seed) {
    u8 doc[DOC];
    Tokens t;
    u32 st = (u32)seed * 2246822519u + 374761393u;
    if (st == 0) st = 1;
    u64 acc = 0;
    for (u32 k = 0; k < DOCS; k++) {
        u32 len = generate(doc, &st);
        t.hash = 0xCBF29CE484222325ull;
        t.nnum = 0;
        for (u32 i = 0; i < 8; i++) t.counts[i] = 0;
        i32 err = tokenize(doc, len, &t);
        if (err) return err;
        shell_sort(t.nums, t.nnum);
        u64 s = 0;
        for (u32 i = 0; i < t.nnum; i++) s = s * 1000003ull + (u64)(i64)t.nums[i];
        for (u32 i = 0; i < 8; i++) s = s * 131ull + t.counts[i];
        acc = rotl64(acc, 17) ^ s ^ t.hash ^ len;
    }
    return (i64)acc;
}
