// SPDX-License-Identifier: MIT
/*
 * Kiln device runtime: linked into every kernel binary by kiln-cc.
 * memcpy/memset family (clang may emit calls to them), printf-style
 * formatting onto the debug channel, and scalar math helpers.
 */
#include <kiln/device/kiln_device.h>

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
        for (; n >= 8; n -= 8, d += 8, s += 8) {
            *(uint64_t *)d = *(const uint64_t *)s;
        }
    }
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);
    }
    while (n--) {
        d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    if (((uintptr_t)d & 7) == 0) {
        uint64_t v = (uint8_t)c * 0x0101010101010101ull;
        for (; n >= 8; n -= 8, d += 8) {
            *(uint64_t *)d = v;
        }
    }
    while (n--) {
        *d++ = (unsigned char)c;
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

/* ---- formatting ---- */

typedef struct {
    char *buf;
    size_t size;
    size_t len;
} Out;

static void out_c(Out *o, char c)
{
    if (o->len + 1 < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

static void out_s(Out *o, const char *s, size_t n, int width, int left, char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;

    if (!left) {
        while (fill-- > 0) {
            out_c(o, pad);
        }
    }
    for (size_t i = 0; i < n; i++) {
        out_c(o, s[i]);
    }
    if (left) {
        while (fill-- > 0) {
            out_c(o, ' ');
        }
    }
}

static void out_u(Out *o, uint64_t v, unsigned base, int upper, int neg, int width,
                  int left, char pad, int prec)
{
    char tmp[32];
    int n = 0;
    const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    do {
        tmp[n++] = dig[v % base];
        v /= base;
    } while (v);
    while (n < prec && n < 30) {
        tmp[n++] = '0';
    }
    if (neg) {
        if (pad == '0') {
            out_c(o, '-');
            width--;
        } else {
            tmp[n++] = '-';
        }
    }
    char rev[32];
    for (int i = 0; i < n; i++) {
        rev[i] = tmp[n - 1 - i];
    }
    out_s(o, rev, (size_t)n, width, left, pad);
}

static void out_f(Out *o, double v, int prec, int width, int left, char pad)
{
    char tmp[64];
    int n = 0;

    if (prec < 0) {
        prec = 6;
    }
    if (prec > 9) {
        prec = 9;
    }
    if (v != v) {
        out_s(o, "nan", 3, width, left, ' ');
        return;
    }
    if (v < 0 || (v == 0 && 1 / v < 0)) {
        tmp[n++] = '-';
        v = -v;
    }
    if (v > 1.8e19) {
        const char *s = v == __builtin_inf() ? "inf" : "big";
        for (int i = 0; i < 3; i++) {
            tmp[n++] = s[i];
        }
        out_s(o, tmp, (size_t)n, width, left, ' ');
        return;
    }
    uint64_t scale = 1;
    for (int i = 0; i < prec; i++) {
        scale *= 10;
    }
    uint64_t ip = (uint64_t)v;
    double frac = v - (double)ip;
    uint64_t fp = (uint64_t)(frac * (double)scale + 0.5);
    if (fp >= scale) {
        ip++;
        fp -= scale;
    }
    char d[24];
    int dn = 0;
    do {
        d[dn++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (dn) {
        tmp[n++] = d[--dn];
    }
    if (prec) {
        tmp[n++] = '.';
        for (int i = prec - 1; i >= 0; i--) {
            tmp[n + i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        n += prec;
    }
    out_s(o, tmp, (size_t)n, width, left, pad);
}

int kiln_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    Out o = { buf, size, 0 };

    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            out_c(&o, *p);
            continue;
        }
        p++;
        int left = 0, width = 0, prec = -1, lng = 0;
        char pad = ' ';
        for (;; p++) {
            if (*p == '-') {
                left = 1;
            } else if (*p == '0') {
                pad = '0';
            } else if (*p == '+' || *p == ' ' || *p == '#') {
                /* accepted, ignored */
            } else {
                break;
            }
        }
        if (*p == '*') {
            width = va_arg(ap, int);
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            width = width * 10 + (*p++ - '0');
        }
        if (*p == '.') {
            p++;
            prec = 0;
            while (*p >= '0' && *p <= '9') {
                prec = prec * 10 + (*p++ - '0');
            }
        }
        while (*p == 'l' || *p == 'z' || *p == 'h' || *p == 'j' || *p == 't') {
            if (*p == 'l' || *p == 'z' || *p == 'j' || *p == 't') {
                lng = 1;
            }
            p++;
        }
        switch (*p) {
        case 'd': case 'i': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            out_u(&o, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, 0, v < 0,
                  width, left, pad, prec);
            break;
        }
        case 'u': case 'x': case 'X': case 'o': {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            out_u(&o, v, *p == 'u' ? 10 : *p == 'o' ? 8 : 16, *p == 'X', 0, width, left,
                  pad, prec);
            break;
        }
        case 'p':
            out_c(&o, '0');
            out_c(&o, 'x');
            out_u(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, 0, 0, 0, 0, ' ', -1);
            break;
        case 'c':
            out_c(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            size_t n = 0;
            if (!s) {
                s = "(null)";
            }
            while (s[n] && (prec < 0 || n < (size_t)prec)) {
                n++;
            }
            out_s(&o, s, n, width, left, ' ');
            break;
        }
        case 'f': case 'F': case 'g': case 'e':
            out_f(&o, va_arg(ap, double), prec, width, left, pad);
            break;
        case '%':
            out_c(&o, '%');
            break;
        case 0:
            p--;
            break;
        default:
            out_c(&o, '%');
            out_c(&o, *p);
            break;
        }
    }
    if (size) {
        buf[o.len < size ? o.len : size - 1] = 0;
    }
    return (int)o.len;
}

int kiln_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kiln_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int kiln_printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = kiln_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kiln_write(buf, (uint64_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
    return n;
}

void kiln_puts(const char *s)
{
    size_t n = 0;
    while (s[n]) {
        n++;
    }
    kiln_write(s, n);
    kiln_putc('\n');
}

/* ---- scalar math (the SE does the vector forms) ---- */

float kiln_expf(float x)
{
    if (x != x) {
        return x;
    }
    if (x > 88.72f) {
        return __builtin_inff();
    }
    if (x < -103.0f) {
        return 0.0f;
    }
    /* exp(x) = 2^k * exp(r), |r| <= ln2/2 */
    float t = x * 1.44269504f;
    float kf = (float)(int)(t + (t >= 0 ? 0.5f : -0.5f));
    float r = x - kf * 0.693145752f - kf * 1.42860677e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
              r * (0.00833333377f + r * 0.00138888892f)))));
    int k = (int)kf;
    /* scale by 2^k in two steps to cover subnormal results */
    int k1 = k / 2, k2 = k - k1;
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k2 + 127) << 23;
    float s1, s2;
    __builtin_memcpy(&s1, &b1, 4);
    __builtin_memcpy(&s2, &b2, 4);
    return p * s1 * s2;
}

float kiln_logf(float x)
{
    if (x != x || x < 0) {
        return __builtin_nanf("");
    }
    if (x == 0) {
        return -__builtin_inff();
    }
    if (x == __builtin_inff()) {
        return x;
    }
    uint32_t b;
    __builtin_memcpy(&b, &x, 4);
    int e = (int)((b >> 23) & 0xff);
    if (e == 0) {                       /* subnormal */
        x *= 8388608.0f;
        __builtin_memcpy(&b, &x, 4);
        e = (int)((b >> 23) & 0xff) - 23;
    }
    e -= 127;
    b = (b & 0x7fffff) | 0x3f800000;
    float m;
    __builtin_memcpy(&m, &b, 4);
    if (m > 1.41421356f) {
        m *= 0.5f;
        e++;
    }
    float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    float l = 2.0f * t * (1.0f + t2 * (0.333333343f + t2 * (0.2f + t2 * (0.142857149f +
              t2 * 0.111111112f))));
    return l + (float)e * 0.693147182f;
}

float kiln_tanhf(float x)
{
    if (x > 9.0f) {
        return 1.0f;
    }
    if (x < -9.0f) {
        return -1.0f;
    }
    float e = kiln_expf(2.0f * x);
    return (e - 1.0f) / (e + 1.0f);
}

float kiln_bf16_to_f32(kiln_bf16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}

kiln_bf16_t kiln_f32_to_bf16(float f)
{
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (kiln_bf16_t)((u >> 16) | 0x40);
    }
    u += 0x7fffu + ((u >> 16) & 1);
    return (kiln_bf16_t)(u >> 16);
}

float kiln_f16_to_f32(kiln_fp16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    uint32_t u;
    if (e == 0x1f) {
        u = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    } else {
        u = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}

kiln_fp16_t kiln_f32_to_f16(float f)
{
    /* the SE does this exactly; a one-element local conversion */
    float *src = (float *)__builtin_alloca(8);
    kiln_fp16_t *dst = (kiln_fp16_t *)__builtin_alloca(8);
    *src = f;
    kiln_se_cvt(dst, KILN_DTYPE_FP16, src, KILN_DTYPE_FP32, 1);
    return *dst;
}

/* ELF entry stub: kernels are entered through their generated entry wrappers */
void _start(void);
void _start(void)
{
    kiln_trap(0x5354415254ull);     /* "START": not a kernel */
}
