/* tracedb.ingest._cstage: the loader's per-line and per-value work, in C.
 *
 * Optional accelerator. parse.py and rows.py hold the reference implementation
 * in Python; rows.py picks this module when it was built (setup.py builds it as an
 * optional extension at install time; TRACEDB_PURE_PYTHON=1 ignores it).
 * tests/test_cstage.py checks that both give identical results.
 *
 *   scan(text, first_line=0) -> (fast, rest, trace_lines), lines numbered from
 *       first_line + 1 (a chunk of a large file)
 *       fast: [(line_no, side, name, raw, n)] for every line of the common shape
 *             "TRACE_C: name 1 2 3" (see parse._FAST); rest: [(line_no, line)]
 *             for the other TRACE lines, the indented lines that follow a TRACE
 *             line (continuation candidates) and the lines that may name a pixel.
 *   components(raw) -> [(label, num, text, kind, digits, half_ulp)]
 *   digest(components) -> rows.tap_digest(components): an int or None
 *   Stager() with .taps(rows), .values(run_id, entries), .new_keys(rows) and
 *   .image() -> bytes: rows written straight into a private in-memory SQLite
 *   database through the C API, so no Python object is made per value.
 *
 * The rows are bound by position in the column order of tracedb/store/layout.py:
 * TAP_PARAMS, VALUE_PARAMS and KEY_PARAMS values per row. Stager() refuses
 * statements with other parameter counts, and rows.py uses this module only when
 * these constants match the layout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <sqlite3.h>
#include <string.h>

#define MAX_LINE_CHARS 65536

/* Parameters bound per row: layout.TAP_COLS (Stager_run binds 1..16), layout.VALUE_COLS
 * (stage_payload binds 1..9) and the new_key row (lid + layout.PAIRING_KEY_COLS). */
#define TAP_PARAMS 16
#define VALUE_PARAMS 9
#define KEY_PARAMS 5

static PyObject *S_c, *S_py, *S_num, *S_inf, *S_minf;

/* ------------------------------------------------------------------ characters */

static inline int is_blank(char c) { return c == ' ' || c == '\t'; }
static inline int is_alpha_(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
static inline int is_ident(char c) { return is_alpha_(c) || (c >= '0' && c <= '9') || c == '.'; }
static inline int is_numchar(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* ------------------------------------------------------------------ numbers */

/* A token as float() reads it; 0 when float() would refuse it. */
static int read_double(const char *tok, Py_ssize_t len, double *out) {
    char small[64];
    char *buf = small;
    if (len >= (Py_ssize_t)sizeof(small)) {
        buf = PyMem_Malloc(len + 1);
        if (buf == NULL) return -1;
    }
    memcpy(buf, tok, len);
    buf[len] = '\0';
    double v = PyOS_string_to_double(buf, NULL, NULL);
    int ok = 1;
    if (v == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) ok = -1;
        else { PyErr_Clear(); ok = 0; }
    }
    if (buf != small) PyMem_Free(buf);
    *out = v;
    return ok;
}

/* ValueError("not a number: <token>") (PyErr_Format has no %.*s on every Python). */
static void not_a_number(const char *tok, Py_ssize_t len) {
    PyObject *text = PyUnicode_DecodeUTF8(tok, len, "replace");
    if (text == NULL) return;
    PyErr_Format(PyExc_ValueError, "not a number: %U", text);
    Py_DECREF(text);
}

/* parse._precision: significant digits as written, half a unit in the last one. */
static void precision(const char *s, Py_ssize_t len, long *digits_out, double *half_ulp) {
    const char *end = s + len;
    if (s < end && (*s == '+' || *s == '-')) s++;
    const char *cut = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == 'e') { cut = p; break; }
    if (cut == NULL)
        for (const char *p = s; p < end; p++)
            if (*p == 'E') { cut = p; break; }
    long long exp = 0;
    const char *mant_end = end;
    if (cut != NULL) {
        const char *p = cut + 1;
        int neg = 0;
        if (p < end && (*p == '+' || *p == '-')) { neg = *p == '-'; p++; }
        for (; p < end; p++) {
            if (exp < (1LL << 40)) exp = exp * 10 + (*p - '0');
        }
        if (neg) exp = -exp;
        mant_end = cut;
    }
    /* digits: the mantissa without its point; point: index of the point in it */
    Py_ssize_t ndig = 0, point = -1, lead = 0;
    int in_lead = 1;
    for (const char *p = s; p < mant_end; p++) {
        if (*p == '.') {
            if (point < 0) { point = ndig; continue; }
        }
        if (in_lead && *p == '0') lead++;
        else in_lead = 0;
        ndig++;
    }
    if (point < 0) point = ndig;
    Py_ssize_t n = ndig - lead;
    if (n == 0) { *digits_out = 0; *half_ulp = 0.0; return; }
    long long adjusted = (long long)point - (long long)lead - 1 + exp;
    long long k = adjusted - (n > 6 ? n : 6) + 1;
    *digits_out = (long)n;
    *half_ulp = 0.5 * pow(10.0, (double)k);
}

/* ------------------------------------------------------------------ lines */

typedef struct {
    int side; /* 0: c, 1: py */
    const char *name; Py_ssize_t name_len;
    const char *raw; Py_ssize_t raw_len;
    Py_ssize_t n;
} Fast;

/* parse._fast without building anything: 1 when the line has the common shape. */
static int match_fast(const char *s, Py_ssize_t len, Fast *f) {
    const char *p = s, *end = s + len;
    while (p < end && is_blank(*p)) p++;
    if (end - p < 7 || memcmp(p, "TRACE_", 6) != 0) return 0;
    p += 6;
    if (*p == 'C') { f->side = 0; p++; }
    else if (end - p >= 2 && p[0] == 'P' && p[1] == 'Y') { f->side = 1; p += 2; }
    else return 0;
    if (p < end && *p == ':') {
        p++;
        while (p < end && is_blank(*p)) p++;
    } else if (p < end && is_blank(*p)) {
        while (p < end && is_blank(*p)) p++;
    } else return 0;
    if (p >= end || !is_alpha_(*p)) return 0;
    f->name = p;
    while (p < end && is_ident(*p)) p++;
    f->name_len = p - f->name;
    if (p < end && *p == '=') p++;
    else if (p < end && is_blank(*p)) { while (p < end && is_blank(*p)) p++; }
    else return 0;
    if (p >= end || !is_numchar(*p)) return 0;
    const char *v = p;
    for (; p < end; p++)
        if (!is_numchar(*p) && !is_blank(*p)) return 0;
    if (f->name_len == 5 && memcmp(f->name, "pixel", 5) == 0) return 0;
    const char *vend = end;
    while (vend > v && is_blank(vend[-1])) vend--;
    f->raw = v; f->raw_len = vend - v;
    Py_ssize_t n = 0;
    p = v;
    while (p < vend) {
        const char *t = p;
        while (p < vend && !is_blank(*p)) p++;
        double d;
        int ok = read_double(t, p - t, &d);
        if (ok <= 0) return ok;
        n++;
        while (p < vend && is_blank(*p)) p++;
    }
    f->n = n;
    return 1;
}

static int is_trace_line(const char *s, Py_ssize_t len) {
    const char *p = s, *end = s + len;
    while (p < end && is_blank(*p)) p++;
    return end - p >= 6 && memcmp(p, "TRACE", 5) == 0 && (p[5] == '_' || p[5] == ':');
}

/* An indented line with something on it: it may continue the TRACE record above. */
static int is_indented(const char *s, Py_ssize_t len) {
    if (len == 0 || !is_blank(s[0])) return 0;
    for (Py_ssize_t i = 1; i < len; i++)
        if (!is_blank(s[i]) && s[i] != '\r') return 1;
    return 0;
}

/* "ixel" or "IXEL" (pixel, Pixel, PIXEL): the line may name a pixel. */
static int has_ixel(const char *s, Py_ssize_t len) {
    for (Py_ssize_t i = 0; i + 4 <= len; i++)
        if ((s[i] == 'i' && memcmp(s + i, "ixel", 4) == 0)
            || (s[i] == 'I' && memcmp(s + i, "IXEL", 4) == 0)) return 1;
    return 0;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    PyObject *arg;
    long first_line = 0; /* the number of the line before the text's first */
    if (!PyArg_ParseTuple(args, "U|l", &arg, &first_line)) return NULL;
    const char *text = PyUnicode_AsUTF8AndSize(arg, &size);
    if (text == NULL) return NULL;
    int has_cr = memchr(text, '\r', size) != NULL;
    PyObject *fast = PyList_New(0), *rest = PyList_New(0);
    if (fast == NULL || rest == NULL) goto fail;
    long trace_lines = 0, line_no = first_line;
    int in_record = 0; /* the line above was a TRACE line or a continuation candidate */
    const char *p = text, *end = text + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        const char *le = nl ? nl : end;
        Py_ssize_t len = le - p;
        line_no++;
        if (has_cr && len > 0 && p[len - 1] == '\r') len--;
        Fast f;
        int m = 0;
        if (len <= MAX_LINE_CHARS) {
            m = match_fast(p, len, &f);
            if (m < 0) goto fail;
        }
        if (m) {
            trace_lines++;
            in_record = 1;
            PyObject *t = Py_BuildValue("(lOs#s#n)", line_no, f.side ? S_py : S_c,
                                        f.name, f.name_len, f.raw, f.raw_len, f.n);
            if (t == NULL || PyList_Append(fast, t) < 0) { Py_XDECREF(t); goto fail; }
            Py_DECREF(t);
        } else {
            int trace = is_trace_line(p, len);
            if (trace) trace_lines++;
            int continues = !trace && in_record && is_indented(p, len);
            in_record = trace || continues;
            if (trace || continues || has_ixel(p, len)) {
                PyObject *t = Py_BuildValue("(ls#)", line_no, p, len);
                if (t == NULL || PyList_Append(rest, t) < 0) { Py_XDECREF(t); goto fail; }
                Py_DECREF(t);
            }
        }
        p = nl ? nl + 1 : end;
    }
    return Py_BuildValue("(NNl)", fast, rest, trace_lines);
fail:
    Py_XDECREF(fast);
    Py_XDECREF(rest);
    return NULL;
}

/* One component as parse.Component holds it. */
static PyObject *component(const char *tok, Py_ssize_t len) {
    double v;
    int ok = read_double(tok, len, &v);
    if (ok < 0) return NULL;
    if (ok == 0) {
        not_a_number(tok, len);
        return NULL;
    }
    if (isinf(v))
        return Py_BuildValue("(OOs#OOO)", Py_None, Py_None, tok, len, v > 0 ? S_inf : S_minf,
                             Py_None, Py_None);
    long digits;
    double half;
    precision(tok, len, &digits, &half);
    return Py_BuildValue("(Ods#Old)", Py_None, v, tok, len, S_num, digits, half);
}

static PyObject *components(PyObject *self, PyObject *arg) {
    Py_ssize_t size;
    const char *raw = PyUnicode_AsUTF8AndSize(arg, &size);
    if (raw == NULL) return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    const char *p = raw, *end = raw + size;
    while (p < end) {
        while (p < end && is_blank(*p)) p++;
        if (p >= end) break;
        const char *t = p;
        while (p < end && !is_blank(*p)) p++;
        PyObject *c = component(t, p - t);
        if (c == NULL || PyList_Append(out, c) < 0) { Py_XDECREF(c); Py_DECREF(out); return NULL; }
        Py_DECREF(c);
    }
    return out;
}

/* ------------------------------------------------------------------ digests */
/* rows.tap_digest, in C (see there): a tap's numbers to 41 bits of mantissa, its
 * special values (nan, inf, -inf) and its texts, one token each, a label a token of
 * its own before its component's, mixed in order by splitmix64's finaliser; none
 * (NULL) when a number lies outside the band 1e-150..1e150, a text or label is no
 * valid UTF-8, or a kind is none the status rules know. */

typedef struct {
    uint64_t h;
    long long n;
    int none;
    int drop;  /* the low bits of a number left out (rows.DIGEST_DROP_BITS) */
} Digest;

/* rows.DIGEST_DROP_BITS: a number's token is its sign, exponent and top 41 bits */
#define DIGEST_DROP 11

/* rows.DIGEST_KIND_TOKENS: above every number's token (< 2**53) */
#define TOKEN_NAN ((1ULL << 56) | 1)
#define TOKEN_INF ((1ULL << 56) | 2)
#define TOKEN_NEG_INF ((1ULL << 56) | 3)

static inline uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline void dg_token(Digest *d, uint64_t t) {
    d->h = mix64(d->h ^ t);
    d->n++;
}

static inline void dg_none(Digest *d) {
    d->none = 1;
    d->n++;
}

/* rows._text_token: a text or label of up to 7 UTF-8 bytes exactly (its length in
 * bits 56-58, its bytes little-endian), a longer one as its 8-byte chunks mixed in
 * order from its length, 61 bits of it with bit 61 set; under a tag (the top two
 * bits: rows.DIGEST_TEXT_TAG, DIGEST_LABEL_TAG) */
#define TAG_TEXT (2ULL << 62)
#define TAG_LABEL (3ULL << 62)

static int dg_text(Digest *d, PyObject *text, uint64_t tag) {
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    if (s == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
        PyErr_Clear();  /* a lone surrogate: no digest, the values decide */
        dg_none(d);
        return 0;
    }
    uint64_t body;
    if (len <= 7) {
        body = (uint64_t)len << 56;
        for (Py_ssize_t i = 0; i < len; i++) body |= (uint64_t)(unsigned char)s[i] << (8 * i);
    } else {
        uint64_t h = (uint64_t)len;
        for (Py_ssize_t i = 0; i < len; i += 8) {
            uint64_t chunk = 0;
            for (Py_ssize_t j = 0; j < 8 && i + j < len; j++)
                chunk |= (uint64_t)(unsigned char)s[i + j] << (8 * j);
            h = mix64(h ^ chunk);
        }
        body = (1ULL << 61) | (h >> 3);
    }
    dg_token(d, tag | body);
    return 0;
}

static inline void dg_num(Digest *d, double v) {
    if (v == 0.0) { dg_token(d, 0); return; }
    double a = fabs(v);
    if (!(a >= 1e-150 && a <= 1e150)) { dg_none(d); return; }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    dg_token(d, bits >> d->drop);
}

/* The digest of parse.Component tuples (label, num, text, kind, ...). */
static int dg_components(Digest *d, PyObject *comps) {
    PyObject *seq = PySequence_Fast(comps, "components must be a sequence");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *label, *num, *kind;
        if (!PyTuple_Check(c) || PyTuple_GET_SIZE(c) < 4) {
            PyErr_SetString(PyExc_TypeError, "a component is not a tuple of 4 or more");
            Py_DECREF(seq);
            return -1;
        }
        label = PyTuple_GET_ITEM(c, 0); num = PyTuple_GET_ITEM(c, 1);
        kind = PyTuple_GET_ITEM(c, 3);
        if (label != Py_None && dg_text(d, label, TAG_LABEL) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(kind, &len);
        if (s == NULL) { Py_DECREF(seq); return -1; }
        if (len == 3 && memcmp(s, "num", 3) == 0) {
            double v = PyFloat_AsDouble(num);
            if (v == -1.0 && PyErr_Occurred()) { Py_DECREF(seq); return -1; }
            dg_num(d, v);
        } else if (len == 3 && memcmp(s, "nan", 3) == 0) {
            dg_token(d, TOKEN_NAN);
        } else if (len == 3 && memcmp(s, "inf", 3) == 0) {
            dg_token(d, TOKEN_INF);
        } else if (len == 4 && memcmp(s, "-inf", 4) == 0) {
            dg_token(d, TOKEN_NEG_INF);
        } else if (len == 4 && memcmp(s, "text", 4) == 0) {
            if (dg_text(d, PyTuple_GET_ITEM(c, 2), TAG_TEXT) < 0) {
                Py_DECREF(seq);
                return -1;
            }
        } else {  /* no kind the status rules know: the values decide */
            dg_none(d);
        }
    }
    Py_DECREF(seq);
    return 0;
}

/* The digest's value: a signed 64-bit integer, or None. */
static int dg_final(Digest *d, long long *out) {
    if (d->none) return 0;
    uint64_t h = mix64(d->h ^ (uint64_t)d->n);
    memcpy(out, &h, sizeof h);
    return 1;
}

/* digest(comps, drop=11, /): rows.tap_digest */
static PyObject *py_digest(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "digest takes 1 or 2 arguments, not %zd", nargs);
        return NULL;
    }
    long drop = DIGEST_DROP;
    if (nargs == 2) {
        drop = PyLong_AsLong(args[1]);
        if (drop == -1 && PyErr_Occurred()) return NULL;
    }
    if (drop < 0 || drop > 52) {
        PyErr_Format(PyExc_ValueError, "a digest drops 0 to 52 bits of a number, not %ld", drop);
        return NULL;
    }
    Digest d = {0, 0, 0, (int)drop};
    if (dg_components(&d, args[0]) < 0) return NULL;
    long long out;
    if (!dg_final(&d, &out)) Py_RETURN_NONE;
    return PyLong_FromLongLong(out);
}

/* ------------------------------------------------------------------ Stager */

/* A growing byte buffer (COPY text of one table). */
typedef struct {
    char *data;
    size_t len, cap;
} Buf;

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    sqlite3_stmt *tap, *value, *key;
    int text;    /* 1: rows become PostgreSQL COPY text instead of SQLite rows */
    Buf buf[2];  /* COPY text of the tap and value rows */
    double half_v; char half_s[40]; /* the last half_ulp and its text */
} Stager;

enum { T_TAP = 0, T_VALUE = 1, T_KEY = 2 };

static int db_error(Stager *st) {
    PyErr_Format(PyExc_RuntimeError, "stage database: %s",
                 st->db ? sqlite3_errmsg(st->db) : "not open");
    return -1;
}

static void buf_free(Buf *b) {
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_grow(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) { PyErr_NoMemory(); return -1; }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *s, size_t n) {
    if (buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static void Stager_close(Stager *st) {
    buf_free(&st->buf[0]);
    buf_free(&st->buf[1]);
    sqlite3_finalize(st->tap);
    sqlite3_finalize(st->value);
    sqlite3_finalize(st->key);
    st->tap = st->value = st->key = NULL;
    if (st->db) sqlite3_close(st->db);
    st->db = NULL;
}

static void Stager_dealloc(Stager *st) {
    Stager_close(st);
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static int Stager_init(Stager *st, PyObject *args, PyObject *kw) {
    PyObject *ddl;
    const char *tap_sql = NULL, *value_sql = NULL, *key_sql = NULL;
    if (!PyArg_ParseTuple(args, "O|sss", &ddl, &tap_sql, &value_sql, &key_sql)) return -1;
    Stager_close(st);
    st->half_v = -1.0;
    st->text = ddl == Py_None;
    if (st->text) return 0; /* COPY text: no database */
    if (key_sql == NULL) {
        PyErr_SetString(PyExc_TypeError, "Stager(ddl, tap_sql, value_sql, key_sql) or Stager(None)");
        return -1;
    }
    /* private to this object, used by one thread at a time: no per-call mutex */
    if (sqlite3_open_v2(":memory:", &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return db_error(st);
    PyObject *it = PyObject_GetIter(ddl);
    if (it == NULL) return -1;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        const char *sql = PyUnicode_AsUTF8(item);
        int rc = sql ? sqlite3_exec(st->db, sql, NULL, NULL, NULL) : SQLITE_ERROR;
        Py_DECREF(item);
        if (sql == NULL) { Py_DECREF(it); return -1; }
        if (rc != SQLITE_OK) { Py_DECREF(it); return db_error(st); }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    if (sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(st->db, tap_sql, -1, &st->tap, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(st->db, value_sql, -1, &st->value, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(st->db, key_sql, -1, &st->key, NULL) != SQLITE_OK)
        return db_error(st);
    /* the rows are bound by position: a statement with other parameters would get
     * values in the wrong columns (or none) */
    static const struct { const char *what; int want; } expect[] = {
        {"tap_sql", TAP_PARAMS}, {"value_sql", VALUE_PARAMS}, {"key_sql", KEY_PARAMS}};
    sqlite3_stmt *stmts[] = {st->tap, st->value, st->key};
    for (int k = 0; k < 3; k++) {
        int got = stmts[k] ? sqlite3_bind_parameter_count(stmts[k]) : 0;
        if (got != expect[k].want) {
            PyErr_Format(PyExc_ValueError,
                         "Stager: %s has %d parameters, the C stager binds %d per row",
                         expect[k].what, got, expect[k].want);
            Stager_close(st);
            return -1;
        }
    }
    return 0;
}

static inline sqlite3_stmt *stmt_of(Stager *st, int t) {
    return t == T_TAP ? st->tap : t == T_VALUE ? st->value : st->key;
}

/* Column ``i`` (1-based) of the current row of table ``t``: a bound parameter, or a
 * field of COPY text (tab-separated, \N for NULL, text escaped as COPY reads it). */
static inline int col_sep(Stager *st, int t, int i) {
    if (t == T_KEY) {
        PyErr_SetString(PyExc_ValueError, "a COPY text stager keeps no provisional keys");
        return -1;
    }
    return i > 1 ? buf_put(&st->buf[t], "\t", 1) : 0;
}

static int put_null(Stager *st, int t, int i) {
    if (!st->text) return sqlite3_bind_null(stmt_of(st, t), i) == SQLITE_OK ? 0 : db_error(st);
    if (col_sep(st, t, i) < 0) return -1;
    return buf_put(&st->buf[t], "\\N", 2);
}

static int put_int(Stager *st, int t, int i, long long x) {
    if (!st->text)
        return sqlite3_bind_int64(stmt_of(st, t), i, x) == SQLITE_OK ? 0 : db_error(st);
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", x);
    if (col_sep(st, t, i) < 0) return -1;
    return buf_put(&st->buf[t], tmp, (size_t)n);
}

/* A double as repr() writes it (shortest text that reads back the same). */
static int put_repr(Stager *st, int t, double v) {
    char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL) return -1;
    int rc = buf_put(&st->buf[t], r, strlen(r));
    PyMem_Free(r);
    return rc;
}

static int put_double(Stager *st, int t, int i, double v) {
    if (!st->text)
        return sqlite3_bind_double(stmt_of(st, t), i, v) == SQLITE_OK ? 0 : db_error(st);
    if (col_sep(st, t, i) < 0) return -1;
    return put_repr(st, t, v);
}

/* Text; ``keep``: SQLite may keep the pointer until the row is written. */
static int put_text_x(Stager *st, int t, int i, const char *s, Py_ssize_t n, int keep) {
    if (!st->text)
        return sqlite3_bind_text(stmt_of(st, t), i, s, (int)n,
                                 keep ? SQLITE_STATIC : SQLITE_TRANSIENT) == SQLITE_OK
            ? 0 : db_error(st);
    if (col_sep(st, t, i) < 0) return -1;
    Buf *b = &st->buf[t];
    if (buf_grow(b, 2 * (size_t)n) < 0) return -1;
    char *o = b->data + b->len;
    for (Py_ssize_t k = 0; k < n; k++) {
        char c = s[k];
        switch (c) {
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\0':
            PyErr_SetString(PyExc_ValueError, "PostgreSQL text cannot hold a NUL character");
            return -1;
        default: *o++ = c;
        }
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

static inline int put_text(Stager *st, int t, int i, const char *s, Py_ssize_t n) {
    return put_text_x(st, t, i, s, n, 0);
}

/* Put a Python value as sqlite3's own adapters (or psycopg's COPY) would. */
static int put_object(Stager *st, int t, int i, PyObject *v) {
    if (v == Py_None) return put_null(st, t, i);
    if (PyBool_Check(v)) return put_int(st, t, i, v == Py_True);
    if (PyLong_CheckExact(v)) {
        long long x = PyLong_AsLongLong(v);
        if (x == -1 && PyErr_Occurred()) return -1;
        return put_int(st, t, i, x);
    }
    if (PyFloat_Check(v)) return put_double(st, t, i, PyFloat_AS_DOUBLE(v));
    if (PyUnicode_Check(v)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL) return -1;
        return put_text(st, t, i, s, n);
    }
    PyErr_Format(PyExc_TypeError, "cannot stage a %s", Py_TYPE(v)->tp_name);
    return -1;
}

static int end_row(Stager *st, int t) {
    if (st->text) return col_sep(st, t, 1) < 0 ? -1 : buf_put(&st->buf[t], "\n", 1);
    sqlite3_stmt *stmt = stmt_of(st, t);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : db_error(st);
}

static int stager_open(Stager *st) {
    if (st->text || st->db != NULL) return 0;
    return db_error(st);
}

/* Rows of Python values into table ``t``; ``prefix`` values put first. */
static int insert_rows(Stager *st, int t, PyObject *rows, long long *prefix, int nprefix) {
    PyObject *it = PyObject_GetIter(rows);
    if (it == NULL) return -1;
    PyObject *row;
    while ((row = PyIter_Next(it)) != NULL) {
        PyObject *seq = PySequence_Fast(row, "a row must be a sequence");
        Py_DECREF(row);
        if (seq == NULL) { Py_DECREF(it); return -1; }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        int err = 0;
        for (int i = 0; i < nprefix && !err; i++) err = put_int(st, t, i + 1, prefix[i]);
        for (Py_ssize_t i = 0; i < n && !err; i++)
            err = put_object(st, t, (int)(nprefix + i + 1), PySequence_Fast_GET_ITEM(seq, i));
        Py_DECREF(seq);
        if (err || end_row(st, t) < 0) { Py_DECREF(it); return -1; }
        if (nprefix) prefix[nprefix - 1]++; /* the component index */
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *Stager_taps(Stager *st, PyObject *rows) {
    if (stager_open(st) < 0) return NULL;
    if (insert_rows(st, T_TAP, rows, NULL, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Stager_new_keys(Stager *st, PyObject *rows) {
    if (st->text) {
        PyErr_SetString(PyExc_ValueError, "a COPY text stager keeps no provisional keys");
        return NULL;
    }
    if (stager_open(st) < 0) return NULL;
    if (insert_rows(st, T_KEY, rows, NULL, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

/* A number token as COPY text: the token itself when PostgreSQL's float8 input
 * reads it as float() did (plain decimal notation, a normal or written-zero value),
 * otherwise repr(). */
static int put_num(Stager *st, int i, const char *t, Py_ssize_t len, double v) {
    if (!st->text) return put_double(st, T_VALUE, i, v);
    if (col_sep(st, T_VALUE, i) < 0) return -1;
    int plain = len < 64 && (isnormal(v) || v == 0.0);
    for (Py_ssize_t k = 0; k < len && plain; k++) {
        if (!is_numchar(t[k])) plain = 0;
        else if (v == 0.0 && (t[k] == 'e' || t[k] == 'E')) plain = 0; /* 1e-400 underflows */
    }
    if (plain) return buf_put(&st->buf[T_VALUE], t, (size_t)len);
    return put_repr(st, T_VALUE, v);
}

static int put_half(Stager *st, int i, double half) {
    if (!st->text) return put_double(st, T_VALUE, i, half);
    if (col_sep(st, T_VALUE, i) < 0) return -1;
    if (half != st->half_v) {
        char *r = PyOS_double_to_string(half, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (r == NULL) return -1;
        size_t n = strlen(r);
        if (n >= sizeof st->half_s) { /* never for a power of ten; no cache */
            int rc = buf_put(&st->buf[T_VALUE], r, n);
            PyMem_Free(r);
            return rc;
        }
        memcpy(st->half_s, r, n + 1);
        PyMem_Free(r);
        st->half_v = half;
    }
    return buf_put(&st->buf[T_VALUE], st->half_s, strlen(st->half_s));
}

/* One tap's value rows: ``payload`` is the value text of a common-shape line
 * (numbers, parsed here) or a list of parse.Component tuples; ``d`` (when given)
 * takes the tap's digest. */
static int stage_payload(Stager *st, long long run_id, long long key_id, PyObject *payload,
                         Digest *d) {
    if (!PyUnicode_Check(payload)) {
        long long prefix[3] = {run_id, key_id, 0};
        if (d != NULL && dg_components(d, payload) < 0) return -1;
        return insert_rows(st, T_VALUE, payload, prefix, 3);
    }
    Py_ssize_t size;
    const char *raw = PyUnicode_AsUTF8AndSize(payload, &size);
    if (raw == NULL) return -1;
    const char *p = raw, *end = raw + size;
    long long idx = 0;
    while (p < end) {
        while (p < end && is_blank(*p)) p++;
        if (p >= end) break;
        const char *t = p;
        while (p < end && !is_blank(*p)) p++;
        double v;
        int ok = read_double(t, p - t, &v);
        if (ok <= 0) {
            if (ok == 0) not_a_number(t, p - t);
            return -1;
        }
        int err = put_int(st, T_VALUE, 1, run_id) || put_int(st, T_VALUE, 2, key_id)
            || put_int(st, T_VALUE, 3, idx++) || put_null(st, T_VALUE, 4);
        if (err) return -1;
        if (d != NULL) {
            if (isinf(v)) dg_token(d, v > 0 ? TOKEN_INF : TOKEN_NEG_INF);
            else dg_num(d, v);
        }
        if (isinf(v)) {
            err = put_null(st, T_VALUE, 5) || put_text_x(st, T_VALUE, 6, t, p - t, 1)
                || put_text_x(st, T_VALUE, 7, v > 0 ? "inf" : "-inf", v > 0 ? 3 : 4, 1)
                || put_null(st, T_VALUE, 8) || put_null(st, T_VALUE, 9);
        } else {
            long digits;
            double half;
            precision(t, p - t, &digits, &half);
            err = put_num(st, 5, t, p - t, v) || put_text_x(st, T_VALUE, 6, t, p - t, 1)
                || put_text_x(st, T_VALUE, 7, "num", 3, 1) || put_int(st, T_VALUE, 8, digits)
                || put_half(st, 9, half);
        }
        if (err || end_row(st, T_VALUE) < 0) return -1;
    }
    return 0;
}

/* values(run_id, entries): entries are (key_id, payload) in key order. */
static PyObject *Stager_values(Stager *st, PyObject *args) {
    long long run_id;
    PyObject *entries;
    if (!PyArg_ParseTuple(args, "LO", &run_id, &entries)) return NULL;
    if (stager_open(st) < 0) return NULL;
    PyObject *it = PyObject_GetIter(entries);
    if (it == NULL) return NULL;
    PyObject *entry;
    while ((entry = PyIter_Next(it)) != NULL) {
        long long key_id;
        PyObject *payload;
        int err = PyArg_ParseTuple(entry, "LO", &key_id, &payload) ? 0 : -1;
        if (!err) err = stage_payload(st, run_id, key_id, payload, NULL);
        Py_DECREF(entry);
        if (err) { Py_DECREF(it); return NULL; }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* A run's taps and values, as rows.run_rows builds them (see there):
 * run(run_id, base, taps, static, order, first_seq=0) -> (component count of every
 * tap, the taps' digests in key order: layout.digest_list);
 * tap orders (seq) from first_seq + 1, ids base + seq (a run continued from a chunk).
 * ``taps`` holds (line_no, side, name, raw, n) tuples and (line_no, Tap) pairs,
 * ``static`` a template tuple per tap, ``order`` the tap positions in key order. */
static PyObject *Stager_run(Stager *st, PyObject *args) {
    long long run_id, base, first_seq = 0;
    PyObject *taps, *statics, *order;
    if (!PyArg_ParseTuple(args, "LLO!O!O!|L", &run_id, &base, &PyList_Type, &taps, &PyList_Type,
                          &statics, &PyList_Type, &order, &first_seq))
        return NULL;
    if (stager_open(st) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(taps);
    if (PyList_GET_SIZE(statics) != n || PyList_GET_SIZE(order) != n) {
        PyErr_SetString(PyExc_ValueError, "taps, static and order differ in length");
        return NULL;
    }
    PyObject *counts = PyTuple_New(n);
    size_t m = n ? (size_t)n : 1;
    /* each tap's digest, found while its values are staged (they come first); the
     * order, checked once (each tap once); each tap's final digest (0 for none) */
    Digest *digests = PyMem_Calloc(m, sizeof(Digest));
    Py_ssize_t *pos = PyMem_Calloc(m, sizeof(Py_ssize_t));
    uint64_t *fin = PyMem_Calloc(m, sizeof(uint64_t));
    unsigned char *seen = PyMem_Calloc(m, 1);
    if (counts == NULL || digests == NULL || pos == NULL || fin == NULL || seen == NULL) {
        Py_XDECREF(counts);
        PyMem_Free(digests); PyMem_Free(pos); PyMem_Free(fin); PyMem_Free(seen);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) digests[i].drop = DIGEST_DROP;
    for (Py_ssize_t j = 0; j < n; j++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyList_GET_ITEM(order, j));
        if (i < 0 || i >= n || seen[i]) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_IndexError, "order out of range or naming a tap twice");
            goto fail;
        }
        seen[i] = 1;
        pos[j] = i;
        PyObject *entry = PyList_GET_ITEM(taps, i), *sta = PyList_GET_ITEM(statics, i);
        if (!PyTuple_Check(entry) || !PyTuple_Check(sta) || PyTuple_GET_SIZE(sta) != 8) {
            PyErr_SetString(PyExc_TypeError, "a tap entry or template is not a tuple");
            goto fail;
        }
        long long key_id = PyLong_AsLongLong(PyTuple_GET_ITEM(sta, 7));
        if (key_id == -1 && PyErr_Occurred()) goto fail;
        int err;
        if (PyTuple_GET_SIZE(entry) == 5) {
            err = stage_payload(st, run_id, key_id, PyTuple_GET_ITEM(entry, 3), &digests[i]);
        } else {
            PyObject *comps = PyObject_GetAttrString(PyTuple_GET_ITEM(entry, 1), "components");
            if (comps == NULL) goto fail;
            err = stage_payload(st, run_id, key_id, comps, &digests[i]);
            Py_DECREF(comps);
        }
        if (err) goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(taps, i), *sta = PyList_GET_ITEM(statics, i);
        PyObject *shape, *raw, *count;
        if (!PyTuple_Check(entry) || !PyTuple_Check(sta) || PyTuple_GET_SIZE(sta) != 8) {
            PyErr_SetString(PyExc_TypeError, "a tap entry or template is not a tuple");
            goto fail;
        }
        int fast = PyTuple_GET_SIZE(entry) == 5;
        if (fast) {
            raw = PyTuple_GET_ITEM(entry, 3);
            count = PyTuple_GET_ITEM(entry, 4);
            Py_INCREF(raw);
            Py_INCREF(count);
            long nn = PyLong_AsLong(count);
            if (nn == -1 && PyErr_Occurred()) { Py_DECREF(raw); Py_DECREF(count); goto fail; }
            shape = PyUnicode_FromString(nn == 1 ? "scalar" : "vector");
        } else {
            PyObject *tap = PyTuple_GET_ITEM(entry, 1);
            PyObject *comps = PyObject_GetAttrString(tap, "components");
            if (comps == NULL) goto fail;
            Py_ssize_t nn = PyObject_Length(comps);
            Py_DECREF(comps);
            if (nn < 0) goto fail;
            count = PyLong_FromSsize_t(nn);
            shape = PyObject_GetAttrString(tap, "shape");
            raw = PyObject_GetAttrString(tap, "raw");
        }
        if (shape == NULL || raw == NULL || count == NULL) {
            Py_XDECREF(shape); Py_XDECREF(raw); Py_XDECREF(count);
            goto fail;
        }
        PyTuple_SET_ITEM(counts, i, count); /* steals */
        long long seq = first_seq + i + 1;
        int err = put_int(st, T_TAP, 1, base + seq) || put_int(st, T_TAP, 2, run_id)
            || put_int(st, T_TAP, 3, seq) || put_object(st, T_TAP, 4, PyTuple_GET_ITEM(entry, 0));
        for (int k = 0; k < 5 && !err; k++) /* channel, name, loop_key, occurrence, unit */
            err = put_object(st, T_TAP, 5 + k, PyTuple_GET_ITEM(sta, k));
        if (!err) err = put_object(st, T_TAP, 10, shape);
        if (!err) err = put_object(st, T_TAP, 11, count);
        if (!err) err = put_object(st, T_TAP, 12, raw);
        for (int k = 5; k < 8 && !err; k++) /* key_name, key_occurrence, key_id */
            err = put_object(st, T_TAP, 8 + k, PyTuple_GET_ITEM(sta, k));
        long long dg;
        int has = dg_final(&digests[i], &dg);
        fin[i] = has ? (uint64_t)dg : 0;
        if (!err) err = has ? put_int(st, T_TAP, 16, dg) : put_null(st, T_TAP, 16);
        Py_DECREF(shape);
        Py_DECREF(raw);
        if (err || end_row(st, T_TAP) < 0) goto fail;
    }
    /* layout.digest_list: 8 bytes a tap in key order, big-endian, 0 for none */
    PyObject *list = PyBytes_FromStringAndSize(NULL, 8 * n);
    if (list == NULL) goto fail;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(list);
    for (Py_ssize_t j = 0; j < n; j++) {
        uint64_t u = fin[pos[j]];
        for (int b = 0; b < 8; b++) out[8 * j + b] = (unsigned char)(u >> (56 - 8 * b));
    }
    PyMem_Free(digests); PyMem_Free(pos); PyMem_Free(fin); PyMem_Free(seen);
    return Py_BuildValue("(NN)", counts, list);
fail:
    PyMem_Free(digests); PyMem_Free(pos); PyMem_Free(fin); PyMem_Free(seen);
    Py_DECREF(counts);
    return NULL;
}

/* Commit and return the database image (then the stager is closed). */
static PyObject *Stager_image(Stager *st, PyObject *unused) {
    if (st->text) {
        PyErr_SetString(PyExc_ValueError, "a COPY text stager has no database image");
        return NULL;
    }
    if (st->db == NULL) { db_error(st); return NULL; }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        db_error(st); return NULL;
    }
    sqlite3_int64 size = 0;
    unsigned char *data = sqlite3_serialize(st->db, "main", &size, 0);
    if (data == NULL) { db_error(st); return NULL; }
    PyObject *out = PyBytes_FromStringAndSize((const char *)data, size);
    sqlite3_free(data);
    Stager_close(st);
    return out;
}

/* The COPY text of the tap and value rows (then the stager is emptied). */
static PyObject *Stager_copy_text(Stager *st, PyObject *unused) {
    if (!st->text) {
        PyErr_SetString(PyExc_ValueError, "a SQLite stager has no COPY text");
        return NULL;
    }
    PyObject *out = Py_BuildValue("(y#y#)", st->buf[0].data ? st->buf[0].data : "",
                                  (Py_ssize_t)st->buf[0].len,
                                  st->buf[1].data ? st->buf[1].data : "",
                                  (Py_ssize_t)st->buf[1].len);
    buf_free(&st->buf[0]);
    buf_free(&st->buf[1]);
    return out;
}

static PyMethodDef Stager_methods[] = {
    {"taps", (PyCFunction)Stager_taps, METH_O, "Stage tap rows (tuples in tap column order)."},
    {"values", (PyCFunction)Stager_values, METH_VARARGS,
     "Stage one run's values: values(run_id, [(key_id, raw text or components)])."},
    {"run", (PyCFunction)Stager_run, METH_VARARGS,
     "Stage one run's taps and values: run(run_id, base, taps, static, order, first_seq=0)\n"
     "-> (counts, digests in key order) (tap orders from first_seq + 1)."},
    {"new_keys", (PyCFunction)Stager_new_keys, METH_O, "Stage provisional pairing keys."},
    {"image", (PyCFunction)Stager_image, METH_NOARGS, "Commit; the database image as bytes."},
    {"copy_text", (PyCFunction)Stager_copy_text, METH_NOARGS,
     "Stager(None) only: (tap rows, value rows) as PostgreSQL COPY text."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StagerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracedb.ingest._cstage.Stager",
    .tp_basicsize = sizeof(Stager),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Stager(ddl, tap_sql, value_sql, key_sql): rows into a private SQLite database; "
              "Stager(None): rows as PostgreSQL COPY text.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Stager_init,
    .tp_dealloc = (destructor)Stager_dealloc,
    .tp_methods = Stager_methods,
};

/* ------------------------------------------------------------------ module */

static PyObject *py_precision(PyObject *self, PyObject *arg) {
    Py_ssize_t size;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &size);
    if (s == NULL) return NULL;
    long digits;
    double half;
    precision(s, size, &digits, &half);
    return Py_BuildValue("(ld)", digits, half);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "Split a trace text into common-shape lines and the rest: scan(text, first_line=0)."},
    {"components", components, METH_O, "Components of a common-shape value text."},
    {"precision", py_precision, METH_O, "parse._precision, in C."},
    {"digest", (PyCFunction)(void (*)(void))py_digest, METH_FASTCALL,
     "rows.tap_digest, in C: digest(comps, drop=11, /)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_cstage", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__cstage(void) {
    if (PyType_Ready(&StagerType) < 0) return NULL;
    S_c = PyUnicode_InternFromString("c");
    S_py = PyUnicode_InternFromString("py");
    S_num = PyUnicode_InternFromString("num");
    S_inf = PyUnicode_InternFromString("inf");
    S_minf = PyUnicode_InternFromString("-inf");
    if (!S_c || !S_py || !S_num || !S_inf || !S_minf) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&StagerType);
    if (PyModule_AddObject(m, "Stager", (PyObject *)&StagerType) < 0) {
        Py_DECREF(&StagerType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "sqlite_version", sqlite3_libversion()) < 0
        /* rows.py uses a build only when these match the layout */
        || PyModule_AddIntConstant(m, "TAP_PARAMS", TAP_PARAMS) < 0
        || PyModule_AddIntConstant(m, "DIGEST_DROP", DIGEST_DROP) < 0
        || PyModule_AddIntConstant(m, "VALUE_PARAMS", VALUE_PARAMS) < 0
        || PyModule_AddIntConstant(m, "KEY_PARAMS", KEY_PARAMS) < 0
        /* and this one its CSTAGE_ABI (an old build lacks features) */
        || PyModule_AddIntConstant(m, "ABI", 11) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
