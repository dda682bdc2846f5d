/* ofc_version.c - version ordering; the rules are in ofc_version.h. */
#include "ofc_version.h"

#include <string.h>

typedef struct span {
    const char *s;
    size_t n;
} span;

typedef struct version {
    int valid;
    span core; /* "1.2.3" */
    span pre;  /* pre-release identifiers without the leading '-', n == 0: none */
    span post; /* git-describe commit count, n == 0: none */
} version;

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Does [s, *end) end with `tail`? If so, move *end before it. */
static int strip_tail(const char *s, const char **end, const char *tail)
{
    size_t n = strlen(tail);
    if ((size_t)(*end - s) >= n && memcmp(*end - n, tail, n) == 0) {
        *end -= n;
        return 1;
    }
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Recognise a git-describe tail "N-g<hex>" at the end of the pre-release
 * part [s, *end) - either all of it or after a '-'; set post, move *end
 * before it (and before the '-' that separates it). */
static void strip_describe(const char *s, const char **end, span *post)
{
    const char *p = *end, *hex_end = *end, *digits_end;
    while (p > s && is_hex(p[-1])) p--;
    if (hex_end - p < 4 || hex_end - p > 40 || p - s < 3 || p[-1] != 'g' || p[-2] != '-') return;
    p -= 2; /* at "-g" */
    digits_end = p;
    while (p > s && is_digit(p[-1])) p--;
    if (p == digits_end || (p != s && p[-1] != '-')) return;
    post->s = p;
    post->n = (size_t)(digits_end - p);
    *end = p == s ? s : p - 1;
}

/* Are [s, end) dot-separated non-empty identifiers of [0-9A-Za-z-]? */
static int valid_pre(const char *s, const char *end)
{
    const char *field = s;
    for (; s < end; s++) {
        if (*s == '.') {
            if (s == field) return 0;
            field = s + 1;
        } else if (!is_ident_char(*s)) {
            return 0;
        }
    }
    return s > field;
}

static void parse(const char *str, version *v)
{
    const char *s = str ? str : "", *end, *core_end, *p;
    int fields = 0, dirty;
    memset(v, 0, sizeof *v);
    while (is_blank(*s)) s++;
    end = s + strlen(s);
    while (end > s && is_blank(end[-1])) end--;
    if ((*s == 'v' || *s == 'V') && end - s > 1 && is_digit(s[1])) s++;
    p = memchr(s, '+', (size_t)(end - s));
    if (p) end = p;
    dirty = strip_tail(s, &end, "-dirty");
    core_end = memchr(s, '-', (size_t)(end - s));
    if (!core_end) core_end = end;
    for (p = s;;) { /* digits, then '.' and more digits, up to core_end */
        const char *field = p;
        while (p < core_end && is_digit(*p)) p++;
        if (p == field) return;
        fields++;
        if (p == core_end) break;
        if (*p != '.') return;
        p++;
    }
    /* A single number with a suffix ("9036908-dirty") is a hash, not a version. */
    if (fields > 5 || (fields == 1 && (core_end < end || dirty))) return;
    v->core.s = s;
    v->core.n = (size_t)(core_end - s);
    if (core_end < end) {
        const char *pre = core_end + 1;
        strip_describe(pre, &end, &v->post);
        if (end > pre) {
            if (!valid_pre(pre, end)) return;
            v->pre.s = pre;
            v->pre.n = (size_t)(end - pre);
        } else if (v->post.n == 0) {
            return; /* "1.0.0-": an empty pre-release */
        }
    }
    v->valid = 1;
}

/* Compare two digit strings numerically, of any length. */
static int cmp_num(span a, span b)
{
    while (a.n > 1 && a.s[0] == '0') { a.s++; a.n--; }
    while (b.n > 1 && b.s[0] == '0') { b.s++; b.n--; }
    if (a.n == 0) { a.s = "0"; a.n = 1; }
    if (b.n == 0) { b.s = "0"; b.n = 1; }
    if (a.n != b.n) return a.n < b.n ? -1 : 1;
    {
        int r = memcmp(a.s, b.s, a.n);
        return r < 0 ? -1 : (r > 0);
    }
}

/* Next field of `s` split on `sep`; returns 0 when `s` is exhausted. */
static int next_field(span *s, char sep, span *field)
{
    const char *p;
    if (s->s == NULL) return 0;
    p = memchr(s->s, sep, s->n);
    field->s = s->s;
    if (p) {
        field->n = (size_t)(p - s->s);
        s->n -= field->n + 1;
        s->s = p + 1;
    } else {
        field->n = s->n;
        s->s = NULL;
        s->n = 0;
    }
    return 1;
}

static int all_digits(span f)
{
    size_t i;
    if (f.n == 0) return 0;
    for (i = 0; i < f.n; i++)
        if (!is_digit(f.s[i])) return 0;
    return 1;
}

static int cmp_core(span a, span b)
{
    for (;;) {
        span fa = {"0", 1}, fb = {"0", 1};
        int ha = next_field(&a, '.', &fa), hb = next_field(&b, '.', &fb), r;
        if (!ha && !hb) return 0;
        r = cmp_num(fa, fb);
        if (r) return r;
    }
}

static int cmp_pre(span a, span b)
{
    if (a.n == 0 || b.n == 0) /* a release sorts above any pre-release */
        return a.n == 0 ? (b.n == 0 ? 0 : 1) : -1;
    for (;;) {
        span fa, fb;
        int ha = next_field(&a, '.', &fa), hb = next_field(&b, '.', &fb);
        int da, db, r;
        if (!ha || !hb) return ha ? 1 : (hb ? -1 : 0);
        da = all_digits(fa);
        db = all_digits(fb);
        if (da && db) {
            r = cmp_num(fa, fb);
        } else if (da || db) {
            r = da ? -1 : 1; /* numeric identifiers sort first */
        } else {
            size_t n = fa.n < fb.n ? fa.n : fb.n;
            r = memcmp(fa.s, fb.s, n);
            r = r < 0 ? -1 : (r > 0);
            if (r == 0 && fa.n != fb.n) r = fa.n < fb.n ? -1 : 1;
        }
        if (r) return r;
    }
}

static int cmp_parsed(const version *va, const version *vb)
{
    int r = cmp_core(va->core, vb->core);
    if (r) return r;
    r = cmp_pre(va->pre, vb->pre);
    if (r) return r;
    return cmp_num(va->post, vb->post);
}

int ofc_version_compare(const char *a, const char *b)
{
    version va, vb;
    parse(a, &va);
    parse(b, &vb);
    if (!va.valid || !vb.valid) {
        int r = strcmp(a ? a : "", b ? b : "");
        return r < 0 ? -1 : (r > 0);
    }
    return cmp_parsed(&va, &vb);
}

int ofc_version_is_older(const char *a, const char *b)
{
    version va, vb;
    parse(a, &va);
    parse(b, &vb);
    return va.valid && vb.valid && cmp_parsed(&va, &vb) < 0;
}
