/*
 * Compiled kernel of contour accuracy F (refvps.metrics.boundary), optional: refvps falls back
 * to the NumPy kernel when this module is not built. Same algorithm, same integer counts:
 *
 *   pair_counts(gt_bits, pred_bits, width, radius) -> (n_gt, n_pred, matched_gt, matched_pred)
 *
 * gt_bits / pred_bits: C-contiguous uint64 arrays (height, width // 64 + 1) packed as
 * refvps.metrics.bits.pack_mask does (column 64k + b = bit b of word k; bits >= width zero),
 * void already cleared. n_* are the davis2017 _seg2bmap boundary pixel counts; matched_gt the
 * ground-truth boundary pixels within disk(radius) of a prediction boundary pixel, and the other
 * way round. Boundaries, their row-run dilations and the matching are computed only over the
 * masks' extents, and the disk's rows are OR-ed only at words where the other boundary has
 * pixels, so the cost follows the boundaries.
 *
 *   transpose_u8(src, dst) -> None
 *
 * dst = src.T for C-contiguous 2-D uint8 arrays, src (rows, cols) and dst (cols, rows): the
 * transpose of a COCO RLE mask, which pycocotools decodes column by column, as fast as
 * OpenCV's (16x16 blocks in SSE2 registers), so that scoring processes need not load OpenCV.
 * Without SSE2 (ARM) it is byte by byte and slower than OpenCV's, and the module constant
 * transpose_simd is 0: refvps then transposes with OpenCV.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef uint64_t u64;

#if defined(__POPCNT__) || defined(__ARM_NEON) || defined(__aarch64__)
#define POPCOUNT(x) __builtin_popcountll(x)
#else
/* Without a popcount instruction in the target baseline (plain x86-64), the compiler's
   builtin is a library call; this branch-free count is faster. */
static inline int popcount64(u64 x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}
#define POPCOUNT(x) popcount64(x)
#endif

/* The hot functions are compiled twice on x86-64 Linux with GCC, for AVX2 and for the
   baseline, and the loader picks the one the CPU runs (four words an instruction vs two). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

typedef struct {
    Py_ssize_t top, bottom; /* rows, inclusive; top > bottom when empty */
    Py_ssize_t left, right; /* words, inclusive */
} Extent;

/* Work arrays kept between calls, so that large frames do not map and unmap memory at every
   call (the GIL is held throughout, so one set serves the process). */
typedef struct {
    u64 *data;
    size_t size;
} Scratch;

static Scratch planes = {NULL, 0}, levels = {NULL, 0};

static u64 *get_scratch(Scratch *scratch, size_t words) {
    if (words > scratch->size) {
        u64 *grown = (u64 *)realloc(scratch->data, words * sizeof(u64));
        if (grown == NULL) return NULL;
        scratch->data = grown;
        scratch->size = words;
    }
    return scratch->data;
}

static Extent extent_of(const u64 *bits, Py_ssize_t height, Py_ssize_t words) {
    Extent e = {height, -1, words, -1};
    for (Py_ssize_t y = 0; y < height; y++) {
        const u64 *row = bits + y * words;
        for (Py_ssize_t k = 0; k < words; k++) {
            if (row[k]) {
                if (e.top > y) e.top = y;
                e.bottom = y;
                if (e.left > k) e.left = k;
                if (e.right < k) e.right = k;
            }
        }
    }
    return e;
}

/* Row y's words k0 .. k1 (and one more) into out, with the column past the last one replicated
   (the _seg2bmap border rule) and zero beyond. */
static void load_row(const u64 *row, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t words,
                     Py_ssize_t width, u64 *out) {
    for (Py_ssize_t k = k0; k <= k1 + 1; k++) out[k - k0] = k < words ? row[k] : 0;
    Py_ssize_t spare = width / 64, last = width - 1;
    if (spare >= k0 && spare <= k1 + 1)
        out[spare - k0] |= ((row[last / 64] >> (last % 64)) & 1u) << (width % 64);
}

/* The davis2017 _seg2bmap boundary of a packed mask into out (zeroed here), and its extent. */
HOT static Py_ssize_t boundary(const u64 *mask, u64 *out, u64 *line, Py_ssize_t height,
                           Py_ssize_t words, Py_ssize_t width, Extent *extent) {
    memset(out, 0, (size_t)(height * words) * sizeof(u64));
    Extent m = extent_of(mask, height, words);
    Extent b = {height, -1, words, -1};
    Py_ssize_t count = 0;
    *extent = b;
    if (m.bottom < 0) return 0;
    Py_ssize_t y0 = m.top > 0 ? m.top - 1 : 0, k0 = m.left > 0 ? m.left - 1 : 0;
    Py_ssize_t k1 = m.right, n = k1 - k0 + 1, spare = width / 64;
    u64 keep_last = (width % 64) ? ((((u64)1) << (width % 64)) - 1) : 0;
    u64 *cur = line, *nxt = line + n + 1, *value = line + 2 * (n + 1);
    load_row(mask + y0 * words, k0, k1, words, width, cur);
    for (Py_ssize_t y = y0; y <= m.bottom; y++) {
        int has_below = y + 1 < height;
        if (has_below) load_row(mask + (y + 1) * words, k0, k1, words, width, nxt);
        for (Py_ssize_t i = 0; i < n; i++) {
            u64 x = cur[i];
            value[i] = x ^ ((x >> 1) | (cur[i + 1] << 63));
        }
        if (has_below) {
            for (Py_ssize_t i = 0; i < n; i++) {
                u64 x = cur[i], s = nxt[i];
                value[i] |= (x ^ s) | (x ^ ((s >> 1) | (nxt[i + 1] << 63)));
            }
        }
        if (spare >= k0 && spare <= k1) value[spare - k0] &= keep_last;
        u64 *row_out = out + y * words + k0;
        for (Py_ssize_t i = 0; i < n; i++) {
            u64 v = value[i];
            row_out[i] = v;
            if (v) {
                count += POPCOUNT(v);
                if (b.top > y) b.top = y;
                b.bottom = y;
                if (b.left > k0 + i) b.left = k0 + i;
                if (b.right < k0 + i) b.right = k0 + i;
            }
        }
        u64 *swap = cur;
        cur = nxt;
        nxt = swap;
    }
    *extent = b;
    return count;
}

/* One step of a row-run dilation: out = in grown by `step` columns each way (0 < step < 64). */
HOT static void spread(const u64 *in, u64 *out, Py_ssize_t n, Py_ssize_t step) {
    int back = 64 - (int)step;
    if (n == 1) {
        out[0] = in[0] | (in[0] << step) | (in[0] >> step);
        return;
    }
    out[0] = in[0] | (in[0] << step) | (in[0] >> step) | (in[1] << back);
    for (Py_ssize_t k = 1; k + 1 < n; k++) {
        u64 x = in[k];
        out[k] = x | (x << step) | (x >> step) | (in[k - 1] >> back) | (in[k + 1] << back);
    }
    out[n - 1] = in[n - 1] | (in[n - 1] << step) | (in[n - 1] >> step) | (in[n - 2] >> back);
}

/* Pixels of src within disk(radius) of a pixel of tgt (both boundaries, with extents). */
HOT static int count_matched(const u64 *src, Extent se, const u64 *tgt, Extent te,
                         Py_ssize_t words, Py_ssize_t radius,
                         const Py_ssize_t *half_width, Py_ssize_t *matched) {
    *matched = 0;
    if (se.bottom < 0 || te.bottom < 0) return 0;
    Py_ssize_t reach = (radius + 63) / 64;
    /* Only source rows within the radius of target rows can match, and the same for words. */
    Py_ssize_t r0 = se.top > te.top - radius ? se.top : te.top - radius;
    Py_ssize_t r1 = se.bottom < te.bottom + radius ? se.bottom : te.bottom + radius;
    Py_ssize_t w0 = se.left > te.left - reach ? se.left : te.left - reach;
    Py_ssize_t w1 = se.right < te.right + reach ? se.right : te.right + reach;
    if (r0 > r1 || w0 > w1) return 0;
    /* Target rows that can reach them, and the words their runs cover. */
    Py_ssize_t t0 = te.top > r0 - radius ? te.top : r0 - radius;
    Py_ssize_t t1 = te.bottom < r1 + radius ? te.bottom : r1 + radius;
    Py_ssize_t c0 = w0 - reach > 0 ? w0 - reach : 0;
    Py_ssize_t c1 = w1 + reach < words - 1 ? w1 + reach : words - 1;
    Py_ssize_t rows = t1 - t0 + 1, span = c1 - c0 + 1;
    /* Distinct half-widths, ascending; level[w] = index of the run array for half-width w. */
    Py_ssize_t n_levels = 0, level_of[4096];
    if (radius >= 4096) return -1;
    for (Py_ssize_t w = 0; w <= radius; w++) level_of[w] = -1;
    for (Py_ssize_t dy = radius; dy >= 0; dy--) {
        if (level_of[half_width[dy]] < 0) level_of[half_width[dy]] = n_levels++;
    }
    size_t plane = (size_t)(rows * span);
    u64 *runs = get_scratch(&levels, plane * (size_t)(n_levels + 1));
    if (runs == NULL) return -1;
    u64 *tmp = runs + plane * (size_t)n_levels;
    /* Level arrays: each row's run dilation by every distinct half-width, grown one from the
       previous (a step s on a run of half-width m leaves no gap when s <= 2m + 1). */
    for (Py_ssize_t i = 0; i < rows; i++) {
        const u64 *current = tgt + (t0 + i) * words + c0;
        u64 *line = tmp + i * span;
        Py_ssize_t width = 0;
        for (Py_ssize_t w = 0; w <= radius; w++) {
            if (level_of[w] < 0) continue;
            u64 *dest = runs + plane * (size_t)level_of[w] + (size_t)(i * span);
            if (width == w) {
                memcpy(dest, current, (size_t)span * sizeof(u64));
            } else {
                /* Steps alternate between the scratch line and dest, ending in dest. */
                Py_ssize_t steps = 0, grown = width;
                while (grown < w) {
                    Py_ssize_t step = 2 * grown + 1;
                    if (step > w - grown) step = w - grown;
                    if (step > 63) step = 63;
                    grown += step;
                    steps++;
                }
                u64 *target = steps % 2 ? dest : line;
                while (width < w) {
                    Py_ssize_t step = 2 * width + 1;
                    if (step > w - width) step = w - width;
                    if (step > 63) step = 63;
                    spread(current, target, span, step);
                    current = target;
                    target = target == dest ? line : dest;
                    width += step;
                }
            }
            current = dest;
        }
    }
    /* Row by row: the disk's rows OR-ed over the source's words, then matched by popcount. */
    Py_ssize_t total = 0, n = w1 - w0 + 1;
    u64 *near = tmp;  /* the level rows are built, tmp is free again */
    for (Py_ssize_t y = r0; y <= r1; y++) {
        const u64 *srow = src + y * words + w0;
        int any = 0;
        for (Py_ssize_t k = 0; k < n; k++) any |= srow[k] != 0;
        if (!any) continue;
        memset(near, 0, (size_t)n * sizeof(u64));
        Py_ssize_t lo = y - radius < t0 ? t0 - y : -radius;
        Py_ssize_t hi = y + radius > t1 ? t1 - y : radius;
        for (Py_ssize_t dy = lo; dy <= hi; dy++) {
            const u64 *lrow = runs + plane * (size_t)level_of[half_width[dy < 0 ? -dy : dy]] +
                              (size_t)((y + dy - t0) * span + (w0 - c0));
            for (Py_ssize_t k = 0; k < n; k++) near[k] |= lrow[k];
        }
        for (Py_ssize_t k = 0; k < n; k++) total += POPCOUNT(srow[k] & near[k]);
    }
    *matched = total;
    return 0;
}

/* A C-contiguous 2-D buffer of `itemsize`-byte items (of struct format `format` unless NULL). */
static int get_2d(PyObject *obj, Py_buffer *view, int flags, Py_ssize_t itemsize,
                  const char *format, const char *name, const char *what) {
    if (PyObject_GetBuffer(obj, view, flags | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->ndim != 2 || view->itemsize != itemsize ||
        (format != NULL && view->format != NULL && strcmp(view->format, format) != 0)) {
        PyErr_Format(PyExc_ValueError, "%s: a 2-D array of %s is required", name, what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int get_bits(PyObject *obj, Py_buffer *view, const char *name) {
    return get_2d(obj, view, PyBUF_SIMPLE, 8, NULL, name, "64-bit words");
}

static PyObject *pair_counts(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *gt_obj, *pred_obj;
    Py_ssize_t width, radius;
    if (!PyArg_ParseTuple(args, "OOnn", &gt_obj, &pred_obj, &width, &radius)) return NULL;
    Py_buffer gt, pred;
    if (get_bits(gt_obj, &gt, "gt_bits") < 0) return NULL;
    if (get_bits(pred_obj, &pred, "pred_bits") < 0) {
        PyBuffer_Release(&gt);
        return NULL;
    }
    Py_ssize_t height = gt.shape[0], words = gt.shape[1];
    PyObject *result = NULL;
    if (pred.shape[0] != height || pred.shape[1] != words || width < 1 ||
        words != width / 64 + 1 || radius < 0 || radius >= 4096) {
        PyErr_SetString(PyExc_ValueError, "pair_counts: shapes, width or radius do not agree");
        goto done;
    }
    size_t plane = (size_t)(height * words);
    u64 *gt_b = get_scratch(&planes, 2 * plane + 3 * (size_t)(words + 2));
    Py_ssize_t *half_width = (Py_ssize_t *)malloc((size_t)(radius + 1) * sizeof(Py_ssize_t));
    if (gt_b == NULL || half_width == NULL) {
        free(half_width);
        PyErr_NoMemory();
        goto done;
    }
    u64 *pred_b = gt_b + plane;
    /* Half-width of skimage.morphology.disk(radius) on row offset dy. */
    Py_ssize_t dx = radius;
    for (Py_ssize_t dy = 0; dy <= radius; dy++) {
        while (dx * dx + dy * dy > radius * radius) dx--;
        half_width[dy] = dx;
    }
    Extent ge, pe;
    u64 *line = pred_b + plane;
    Py_ssize_t n_gt = boundary((const u64 *)gt.buf, gt_b, line, height, words, width, &ge);
    Py_ssize_t n_pred = boundary((const u64 *)pred.buf, pred_b, line, height, words, width, &pe);
    Py_ssize_t matched_gt = 0, matched_pred = 0;
    if (n_gt && n_pred) {
        if (count_matched(gt_b, ge, pred_b, pe, words, radius, half_width,
                          &matched_gt) < 0 ||
            count_matched(pred_b, pe, gt_b, ge, words, radius, half_width,
                          &matched_pred) < 0) {
            free(half_width);
            PyErr_NoMemory();
            goto done;
        }
    }
    free(half_width);
    result = Py_BuildValue("nnnn", n_gt, n_pred, matched_gt, matched_pred);
done:
    PyBuffer_Release(&gt);
    PyBuffer_Release(&pred);
    return result;
}

static void transpose_scalar(const uint8_t *src, Py_ssize_t src_row, uint8_t *dst,
                             Py_ssize_t dst_row, Py_ssize_t rows, Py_ssize_t cols) {
    for (Py_ssize_t r = 0; r < rows; r++)
        for (Py_ssize_t c = 0; c < cols; c++) dst[c * dst_row + r] = src[r * src_row + c];
}

#if defined(__SSE2__)
/* One 16x16 block: four rounds of interleaving rows pairwise (bytes, then 2, 4 and 8 bytes)
   leave row i of the result in register i. */
static void transpose_16x16(const uint8_t *src, Py_ssize_t src_row, uint8_t *dst,
                            Py_ssize_t dst_row) {
    __m128i a[16], b[16];
    for (int i = 0; i < 16; i++) a[i] = _mm_loadu_si128((const __m128i *)(src + i * src_row));
    for (int i = 0; i < 8; i++) {
        b[2 * i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
        b[2 * i + 1] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < 2; i++) {
            a[4 * g + 2 * i] = _mm_unpacklo_epi16(b[4 * g + i], b[4 * g + 2 + i]);
            a[4 * g + 2 * i + 1] = _mm_unpackhi_epi16(b[4 * g + i], b[4 * g + 2 + i]);
        }
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < 4; i++) {
            b[8 * g + 2 * i] = _mm_unpacklo_epi32(a[8 * g + i], a[8 * g + 4 + i]);
            b[8 * g + 2 * i + 1] = _mm_unpackhi_epi32(a[8 * g + i], a[8 * g + 4 + i]);
        }
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm_unpacklo_epi64(b[i], b[8 + i]);
        a[2 * i + 1] = _mm_unpackhi_epi64(b[i], b[8 + i]);
    }
    for (int i = 0; i < 16; i++) _mm_storeu_si128((__m128i *)(dst + i * dst_row), a[i]);
}
#endif

static int get_u8(PyObject *obj, Py_buffer *view, int flags, const char *name) {
    return get_2d(obj, view, flags, 1, "B", name, "uint8");
}

static PyObject *transpose_u8(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *src_obj, *dst_obj;
    if (!PyArg_ParseTuple(args, "OO", &src_obj, &dst_obj)) return NULL;
    Py_buffer src, dst;
    if (get_u8(src_obj, &src, PyBUF_SIMPLE, "src") < 0) return NULL;
    if (get_u8(dst_obj, &dst, PyBUF_WRITABLE, "dst") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    Py_ssize_t rows = src.shape[0], cols = src.shape[1];
    if (dst.shape[0] != cols || dst.shape[1] != rows) {
        PyErr_SetString(PyExc_ValueError, "transpose_u8: dst must have the shape of src.T");
    } else {
        const uint8_t *in = (const uint8_t *)src.buf;
        uint8_t *out = (uint8_t *)dst.buf;
        Py_ssize_t full_rows = 0, full_cols = 0;
#if defined(__SSE2__)
        full_rows = rows - rows % 16;
        full_cols = cols - cols % 16;
        for (Py_ssize_t r = 0; r < full_rows; r += 16)
            for (Py_ssize_t c = 0; c < full_cols; c += 16)
                transpose_16x16(in + r * cols + c, cols, out + c * rows + r, rows);
#endif
        /* The rest: the last cols % 16 columns of every row, then the last rows % 16 rows. */
        transpose_scalar(in + full_cols, cols, out + full_cols * rows, rows, full_rows,
                         cols - full_cols);
        transpose_scalar(in + full_rows * cols, cols, out + full_rows, rows, rows - full_rows,
                         cols);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pair_counts", pair_counts, METH_VARARGS,
     "pair_counts(gt_bits, pred_bits, width, radius) -> (n_gt, n_pred, matched_gt, "
     "matched_pred): boundary pixel counts and matches of a packed pair (see the module)."},
    {"transpose_u8", transpose_u8, METH_VARARGS,
     "transpose_u8(src, dst): dst = src.T for C-contiguous 2-D uint8 arrays (see the module)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastf",
                                    "Compiled kernels: contour accuracy F, uint8 transpose.",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastf(void) {
    PyObject *m = PyModule_Create(&module);
#if defined(__SSE2__)
    const long simd = 1;
#else
    const long simd = 0;
#endif
    if (m != NULL && PyModule_AddIntConstant(m, "transpose_simd", simd) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
