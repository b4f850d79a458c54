/*
 * MD5 of many buffers at once: 16 (AVX-512) or 8 (AVX2) messages side by side, one per
 * 32-bit lane of a vector register (the "multi-buffer" method of Intel's ISA-L).
 *
 * One MD5 stream cannot go faster than its chain of dependent additions (about 4.5 cycles a
 * byte, what OpenSSL's assembly reaches); many independent streams can share each
 * instruction. The scan has thousands of files to hash, so it hands a batch's files here and
 * SHA-1/SHA-256 to OpenSSL. The digests are the same MD5 (RFC 1321): `triage.analysis.hashers`
 * checks this module against OpenSSL's MD5 when it is first used and does not use it if they
 * differ, and the tests compare them on thousands of messages of every length.
 *
 * digests(buffers, width=0) -> list of 16-byte digests, in the order of the buffers.
 *   width 0 picks the widest this CPU runs (16, 8, or 1 for plain C); tests force 16, 8 or 1.
 * widths() -> the widths this CPU can run, widest first.
 *
 * Lanes are refilled as their messages end (longest messages first is what the caller
 * should pass, so that the last lanes finish together); when two or fewer messages are left
 * they are finished one at a time in plain C, where one stream is faster than a nearly empty
 * vector. The GIL is released while hashing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_VECTORS 1
#include <immintrin.h>
#else
#define HAVE_X86_VECTORS 0
#endif

#define MAX_WIDTH 16
#define SCALAR_BELOW 3 /* finish in plain C once fewer than this many messages are left */

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

static const uint32_t INIT[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

/*
 * The 64 steps, written once. A step is a = b + ((a + f(b,c,d) + X[k] + K[i]) <<< s); the
 * includer defines ADD, ROL, the four round functions F/G/H/I, a constant splat KS and the
 * message words X[0..15] (each a vector of that word across all lanes).
 */
#define STEP(FN, a, b, c, d, k, i, s) \
    a = ADD(b, ROL(ADD(ADD(a, FN(b, c, d)), ADD(X[k], KS(K[i]))), s))

#define MD5_64_STEPS(a, b, c, d)                                                                   \
    STEP(F, a, b, c, d, 0, 0, 7); STEP(F, d, a, b, c, 1, 1, 12); STEP(F, c, d, a, b, 2, 2, 17);     \
    STEP(F, b, c, d, a, 3, 3, 22); STEP(F, a, b, c, d, 4, 4, 7); STEP(F, d, a, b, c, 5, 5, 12);     \
    STEP(F, c, d, a, b, 6, 6, 17); STEP(F, b, c, d, a, 7, 7, 22); STEP(F, a, b, c, d, 8, 8, 7);     \
    STEP(F, d, a, b, c, 9, 9, 12); STEP(F, c, d, a, b, 10, 10, 17); STEP(F, b, c, d, a, 11, 11, 22); \
    STEP(F, a, b, c, d, 12, 12, 7); STEP(F, d, a, b, c, 13, 13, 12); STEP(F, c, d, a, b, 14, 14, 17); \
    STEP(F, b, c, d, a, 15, 15, 22);                                                               \
    STEP(G, a, b, c, d, 1, 16, 5); STEP(G, d, a, b, c, 6, 17, 9); STEP(G, c, d, a, b, 11, 18, 14);  \
    STEP(G, b, c, d, a, 0, 19, 20); STEP(G, a, b, c, d, 5, 20, 5); STEP(G, d, a, b, c, 10, 21, 9);  \
    STEP(G, c, d, a, b, 15, 22, 14); STEP(G, b, c, d, a, 4, 23, 20); STEP(G, a, b, c, d, 9, 24, 5); \
    STEP(G, d, a, b, c, 14, 25, 9); STEP(G, c, d, a, b, 3, 26, 14); STEP(G, b, c, d, a, 8, 27, 20); \
    STEP(G, a, b, c, d, 13, 28, 5); STEP(G, d, a, b, c, 2, 29, 9); STEP(G, c, d, a, b, 7, 30, 14);  \
    STEP(G, b, c, d, a, 12, 31, 20);                                                               \
    STEP(H, a, b, c, d, 5, 32, 4); STEP(H, d, a, b, c, 8, 33, 11); STEP(H, c, d, a, b, 11, 34, 16); \
    STEP(H, b, c, d, a, 14, 35, 23); STEP(H, a, b, c, d, 1, 36, 4); STEP(H, d, a, b, c, 4, 37, 11); \
    STEP(H, c, d, a, b, 7, 38, 16); STEP(H, b, c, d, a, 10, 39, 23); STEP(H, a, b, c, d, 13, 40, 4); \
    STEP(H, d, a, b, c, 0, 41, 11); STEP(H, c, d, a, b, 3, 42, 16); STEP(H, b, c, d, a, 6, 43, 23); \
    STEP(H, a, b, c, d, 9, 44, 4); STEP(H, d, a, b, c, 12, 45, 11); STEP(H, c, d, a, b, 15, 46, 16); \
    STEP(H, b, c, d, a, 2, 47, 23);                                                                \
    STEP(I, a, b, c, d, 0, 48, 6); STEP(I, d, a, b, c, 7, 49, 10); STEP(I, c, d, a, b, 14, 50, 15); \
    STEP(I, b, c, d, a, 5, 51, 21); STEP(I, a, b, c, d, 12, 52, 6); STEP(I, d, a, b, c, 3, 53, 10); \
    STEP(I, c, d, a, b, 10, 54, 15); STEP(I, b, c, d, a, 1, 55, 21); STEP(I, a, b, c, d, 8, 56, 6); \
    STEP(I, d, a, b, c, 15, 57, 10); STEP(I, c, d, a, b, 6, 58, 15); STEP(I, b, c, d, a, 13, 59, 21); \
    STEP(I, a, b, c, d, 4, 60, 6); STEP(I, d, a, b, c, 11, 61, 10); STEP(I, c, d, a, b, 2, 62, 15); \
    STEP(I, b, c, d, a, 9, 63, 21)

/* ---- one message at a time, plain C: the tails, and CPUs without the vector units ---- */

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void md5_blocks_1(uint32_t s[4], const uint8_t *p, size_t nblocks) {
#define ADD(x, y) ((uint32_t)((x) + (y)))
#define ROL(x, n) ((uint32_t)(((x) << (n)) | ((x) >> (32 - (n)))))
#define F(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define G(b, c, d) ((c) ^ ((d) & ((b) ^ (c))))
#define H(b, c, d) ((b) ^ (c) ^ (d))
#define I(b, c, d) ((c) ^ ((b) | ~(d)))
#define KS(k) (k)
    for (size_t n = 0; n < nblocks; n++, p += 64) {
        uint32_t X[16];
        for (int j = 0; j < 16; j++) X[j] = load_le32(p + 4 * j);
        uint32_t a = s[0], b = s[1], c = s[2], d = s[3];
        MD5_64_STEPS(a, b, c, d);
        s[0] += a; s[1] += b; s[2] += c; s[3] += d;
    }
#undef ADD
#undef ROL
#undef F
#undef G
#undef H
#undef I
#undef KS
}

/* ---- 16 lanes: AVX-512F (rotates and three-input logic in one instruction each) ---- */
#if HAVE_X86_VECTORS

/* vpternlogd immediates: the function's truth table on b=0xF0, c=0xCC, d=0xAA. */
#define TL_F (((0xF0 & 0xCC) | (~0xF0 & 0xAA)) & 0xFF)
#define TL_G (((0xF0 & 0xAA) | (0xCC & ~0xAA)) & 0xFF)
#define TL_H ((0xF0 ^ 0xCC ^ 0xAA) & 0xFF)
#define TL_I ((0xCC ^ (0xF0 | (~0xAA & 0xFF))) & 0xFF)

__attribute__((target("avx512f"))) static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/* state: A of the 16 lanes, then B, C, D. Every lane advances nblocks blocks from ptr[lane]. */
__attribute__((target("avx512f"))) static void md5_blocks_16(uint32_t *state, const uint8_t **ptr,
                                                             size_t nblocks) {
#define ADD(x, y) _mm512_add_epi32(x, y)
#define ROL(x, n) _mm512_rol_epi32(x, n)
#define F(b, c, d) _mm512_ternarylogic_epi32(b, c, d, TL_F)
#define G(b, c, d) _mm512_ternarylogic_epi32(b, c, d, TL_G)
#define H(b, c, d) _mm512_ternarylogic_epi32(b, c, d, TL_H)
#define I(b, c, d) _mm512_ternarylogic_epi32(b, c, d, TL_I)
#define KS(k) _mm512_set1_epi32((int)(k))
    __m512i A = _mm512_loadu_si512(state), B = _mm512_loadu_si512(state + 16);
    __m512i C = _mm512_loadu_si512(state + 32), D = _mm512_loadu_si512(state + 48);
    const uint8_t *p[16];
    memcpy(p, ptr, sizeof p);
    for (size_t n = 0; n < nblocks; n++) {
        __m512i X[16];
        for (int l = 0; l < 16; l++) {
            X[l] = _mm512_loadu_si512(p[l]);
            p[l] += 64;
        }
        transpose16(X); /* now X[j] holds message word j of every lane */
        __m512i a = A, b = B, c = C, d = D;
        MD5_64_STEPS(a, b, c, d);
        A = ADD(A, a); B = ADD(B, b); C = ADD(C, c); D = ADD(D, d);
    }
    _mm512_storeu_si512(state, A); _mm512_storeu_si512(state + 16, B);
    _mm512_storeu_si512(state + 32, C); _mm512_storeu_si512(state + 48, D);
#undef ADD
#undef ROL
#undef F
#undef G
#undef H
#undef I
#undef KS
}

/* ---- 8 lanes: AVX2 (no rotate, no three-input logic: a few more instructions a step) ---- */

__attribute__((target("avx2"))) static inline void transpose8(__m256i r[8]) {
    __m256i t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2x128_si256(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2x128_si256(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; i++) r[i] = t[i];
}

__attribute__((target("avx2"))) static void md5_blocks_8(uint32_t *state, const uint8_t **ptr,
                                                         size_t nblocks) {
#define ADD(x, y) _mm256_add_epi32(x, y)
#define ROL(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))
#define F(b, c, d) _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
#define G(b, c, d) _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c)))
#define H(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define I(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ONES)))
#define KS(k) _mm256_set1_epi32((int)(k))
    const __m256i ONES = _mm256_set1_epi32(-1);
    __m256i A = _mm256_loadu_si256((const __m256i *)state);
    __m256i B = _mm256_loadu_si256((const __m256i *)(state + 8));
    __m256i C = _mm256_loadu_si256((const __m256i *)(state + 16));
    __m256i D = _mm256_loadu_si256((const __m256i *)(state + 24));
    const uint8_t *p[8];
    memcpy(p, ptr, sizeof p);
    for (size_t n = 0; n < nblocks; n++) {
        __m256i X[16], lo[8], hi[8];
        for (int l = 0; l < 8; l++) {
            lo[l] = _mm256_loadu_si256((const __m256i *)p[l]);
            hi[l] = _mm256_loadu_si256((const __m256i *)(p[l] + 32));
            p[l] += 64;
        }
        transpose8(lo);
        transpose8(hi);
        for (int j = 0; j < 8; j++) {
            X[j] = lo[j];
            X[j + 8] = hi[j];
        }
        __m256i a = A, b = B, c = C, d = D;
        MD5_64_STEPS(a, b, c, d);
        A = ADD(A, a); B = ADD(B, b); C = ADD(C, c); D = ADD(D, d);
    }
    _mm256_storeu_si256((__m256i *)state, A);
    _mm256_storeu_si256((__m256i *)(state + 8), B);
    _mm256_storeu_si256((__m256i *)(state + 16), C);
    _mm256_storeu_si256((__m256i *)(state + 24), D);
#undef ADD
#undef ROL
#undef F
#undef G
#undef H
#undef I
#undef KS
}
#endif /* HAVE_X86_VECTORS */

typedef void (*lanes_fn)(uint32_t *state, const uint8_t **ptr, size_t nblocks);

static int cpu_has(int width) {
    if (width == 1) return 1;
#if HAVE_X86_VECTORS
    __builtin_cpu_init();
    if (width == 16) return __builtin_cpu_supports("avx512f");
    if (width == 8) return __builtin_cpu_supports("avx2");
#endif
    return 0;
}

/* ---- the scheduler: lanes take messages in order and are refilled as they end ---- */

typedef struct {
    const uint8_t *data; /* the message's whole blocks, then its padded tail */
    size_t blocks;       /* blocks left in the current part */
    int in_tail;
    size_t tail_blocks;
    uint8_t tail[128];
    Py_ssize_t msg; /* index of the message, -1 for an idle lane */
} lane_t;

static void lane_start(lane_t *ln, Py_ssize_t msg, const uint8_t *buf, size_t len) {
    size_t rem = len % 64;
    uint64_t bits = (uint64_t)len * 8;
    memset(ln->tail, 0, sizeof ln->tail);
    if (rem) memcpy(ln->tail, buf + (len - rem), rem);
    ln->tail[rem] = 0x80;
    ln->tail_blocks = rem < 56 ? 1 : 2;
    for (int i = 0; i < 8; i++) ln->tail[ln->tail_blocks * 64 - 8 + i] = (uint8_t)(bits >> (8 * i));
    ln->msg = msg;
    ln->data = buf;
    ln->blocks = len / 64;
    ln->in_tail = 0;
    if (ln->blocks == 0) {
        ln->data = ln->tail;
        ln->blocks = ln->tail_blocks;
        ln->in_tail = 1;
    }
}

static void put_digest(uint8_t *out, const uint32_t s[4]) {
    for (int w = 0; w < 4; w++)
        for (int i = 0; i < 4; i++) out[4 * w + i] = (uint8_t)(s[w] >> (8 * i));
}

/* Lane l's state out of the vectors' layout (A of every lane, then B, C, D). */
static void lane_state(const uint32_t *state, int width, int l, uint32_t s[4]) {
    for (int w = 0; w < 4; w++) s[w] = state[w * width + l];
}

/* The rest of a lane's message in plain C, from state s; its digest into out. */
static void finish_alone(const lane_t *ln, uint32_t s[4], uint8_t *out) {
    md5_blocks_1(s, ln->data, ln->blocks);
    if (!ln->in_tail) md5_blocks_1(s, ln->tail, ln->tail_blocks);
    put_digest(out + 16 * ln->msg, s);
}

/* Hash n messages into out (16 bytes each) with `width` lanes (1, 8 or 16). */
static void md5_many(const Py_buffer *bufs, Py_ssize_t n, uint8_t *out, int width) {
    Py_ssize_t next = 0;
    if (width > 1) {
#if HAVE_X86_VECTORS
        lanes_fn blocks = width == 16 ? md5_blocks_16 : md5_blocks_8;
        lane_t lanes[MAX_WIDTH];
        uint32_t state[4 * MAX_WIDTH];
        const uint8_t *ptr[MAX_WIDTH];
        int active = 0;
        for (int l = 0; l < width; l++) lanes[l].msg = -1;
        for (;;) {
            for (int l = 0; l < width && next < n; l++) {
                if (lanes[l].msg >= 0) continue;
                lane_start(&lanes[l], next, bufs[next].buf, (size_t)bufs[next].len);
                for (int w = 0; w < 4; w++) state[w * width + l] = INIT[w];
                next++;
                active++;
            }
            if (active < SCALAR_BELOW && next == n) break;
            size_t step = SIZE_MAX;
            const uint8_t *any = NULL;
            for (int l = 0; l < width; l++)
                if (lanes[l].msg >= 0 && lanes[l].blocks < step) {
                    step = lanes[l].blocks;
                    any = lanes[l].data;
                }
            /* an idle lane reads the shortest active lane's blocks and its result is dropped */
            for (int l = 0; l < width; l++) ptr[l] = lanes[l].msg >= 0 ? lanes[l].data : any;
            blocks(state, ptr, step);
            for (int l = 0; l < width; l++) {
                lane_t *ln = &lanes[l];
                if (ln->msg < 0) continue;
                ln->data += 64 * step;
                ln->blocks -= step;
                if (ln->blocks > 0) continue;
                if (!ln->in_tail) {
                    ln->data = ln->tail;
                    ln->blocks = ln->tail_blocks;
                    ln->in_tail = 1;
                    continue;
                }
                uint32_t s[4];
                lane_state(state, width, l, s);
                put_digest(out + 16 * ln->msg, s);
                ln->msg = -1;
                active--;
            }
        }
        /* the last few messages, one at a time, from where their lanes left them */
        for (int l = 0; l < width; l++) {
            lane_t *ln = &lanes[l];
            if (ln->msg < 0) continue;
            uint32_t s[4];
            lane_state(state, width, l, s);
            finish_alone(ln, s, out);
        }
#endif
    }
    for (; next < n; next++) {
        lane_t ln;
        uint32_t s[4] = {INIT[0], INIT[1], INIT[2], INIT[3]};
        lane_start(&ln, next, bufs[next].buf, (size_t)bufs[next].len);
        finish_alone(&ln, s, out);
    }
}

/* ---- Python ---- */

static PyObject *py_widths(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    static const int widths[] = {16, 8, 1};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        if (!cpu_has(widths[i])) continue;
        PyObject *w = PyLong_FromLong(widths[i]);
        if (w == NULL || PyList_Append(list, w) < 0) {
            Py_XDECREF(w);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(w);
    }
    return list;
}

static PyObject *py_digests(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *kwlist[] = {"buffers", "width", NULL};
    PyObject *seq_in;
    int width = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|i:digests", kwlist, &seq_in, &width))
        return NULL;
    if (width == 0) width = cpu_has(16) ? 16 : cpu_has(8) ? 8 : 1;
    if (width != 1 && width != 8 && width != 16) {
        PyErr_Format(PyExc_ValueError, "width must be 0, 1, 8 or 16, not %d", width);
        return NULL;
    }
    if (!cpu_has(width)) {
        PyErr_Format(PyExc_ValueError, "this CPU cannot run %d MD5 lanes", width);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(seq_in, "buffers must be a sequence of bytes-like objects");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_buffer *bufs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_buffer));
    PyObject *out = PyBytes_FromStringAndSize(NULL, 16 * n);
    PyObject *result = NULL;
    Py_ssize_t held = 0;
    if (bufs == NULL || out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < n; held++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, held), &bufs[held], PyBUF_SIMPLE) < 0)
            goto done;
    Py_BEGIN_ALLOW_THREADS
    md5_many(bufs, n, (uint8_t *)PyBytes_AS_STRING(out), width);
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    if (result == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyBytes_FromStringAndSize(PyBytes_AS_STRING(out) + 16 * i, 16);
        if (d == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, d);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&bufs[i]);
    PyMem_Free(bufs);
    Py_XDECREF(out);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"digests", (PyCFunction)(void (*)(void))py_digests, METH_VARARGS | METH_KEYWORDS,
     "digests(buffers, width=0) -> list of the buffers' 16-byte MD5 digests, in order.\n"
     "width: 16 (AVX-512), 8 (AVX2), 1 (plain C) or 0 for the widest this CPU runs."},
    {"widths", py_widths, METH_NOARGS, "widths() -> the lane widths this CPU runs, widest first."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_md5lanes",
    .m_doc = "MD5 of many buffers at once in vector lanes.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__md5lanes(void) { return PyModule_Create(&module); }
