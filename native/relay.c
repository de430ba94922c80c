/*
 * Beacon's native relay: moves bytes both ways between two connected TCP sockets on
 * epoll threads of its own, so an established connection costs no JavaScript per chunk
 * and no Node stream objects while idle (issue 4: throughput, keep-alive rate and RSS per
 * idle connection against HAProxy). JavaScript keeps every decision (accept, source
 * ranges, balancing, connect with retry, PROXY header); it hands over a connected pair
 * and hears back once, when the pair has ended, with its byte counts and why.
 *
 * N-API only (ABI-stable: one build loads on Node 20 and 24). Exports:
 *   create(workers, onEnded(Float64Array [id, bytesIn, bytesOut, reason]*)) -> relay
 *   add(relay, id, clientFd, upstreamFd, idleMs, header?)   fds are duplicated; the caller closes its own
 *   cut(relay, id)                                           ends one pair now (reason 3)
 *   close(relay)                                             ends every pair silently, joins threads; idempotent
 * Reasons: 0 done (both directions ended), 1 reset (a socket error), 2 idle timeout, 3 cut.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One read: Node's stream chunk size too, so a blocked direction holds at most this much. */
#define CHUNK (64 * 1024)
#define MAX_EVENTS 256
/* Reads per direction per wake-up before other connections get a turn (fairness). */
#define BUDGET 16
/* Idle checks run a few times per the shortest idle timeout, within these bounds (ms). */
#define SCAN_MIN_MS 10
#define SCAN_MAX_MS 1000

enum { R_DONE = 0, R_RESET = 1, R_IDLE = 2, R_CUT = 3 };
enum { CMD_ADD, CMD_CUT, CMD_STOP };

typedef struct pending { char *buf; uint32_t off, len; } pending;

typedef struct conn {
  int fd[2];            /* 0: client, 1: upstream */
  double id;
  int64_t bytes[2];     /* 0: client -> upstream, 1: upstream -> client */
  int64_t header;       /* PROXY header bytes queued ahead of the client's, not counted as its */
  pending pend[2];      /* bytes read but not yet accepted by the other side, per direction */
  uint8_t readable[2], writable[2], rdhup[2], eof[2], shut[2];
  uint8_t dead, queued;
  int64_t last_ms, idle_ms;
  struct conn *prev, *next;  /* live list */
  struct conn *rnext;        /* ready list: budget ran out, more to read */
  struct conn *dnext;        /* dead list: freed after the event batch */
} conn;

typedef struct cmd { int kind; conn *c; double id; struct cmd *next; } cmd;
typedef struct ended { double id, in, out, reason; } ended;
typedef struct batch { size_t n; ended e[]; } batch;

struct relay;
typedef struct worker {
  struct relay *relay;
  pthread_t thread;
  int started;
  int ep, efd;
  pthread_mutex_t mu;
  cmd *head, *tail;
  int stopping;
  conn *live, *ready, *dead;
  char *buf;
  ended *out;
  size_t nout, capout;
  int64_t scan_ms, next_scan;
} worker;

typedef struct relay {
  worker *w;
  int n;
  int closed;
  napi_threadsafe_function tsfn;
} relay;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(worker *w, conn *c, int reason) {
  if (w->nout == w->capout) {
    size_t cap = w->capout ? w->capout * 2 : 64;
    ended *grown = realloc(w->out, cap * sizeof(ended));
    if (!grown) return; /* out of memory: the pair still ends; JavaScript loses its counters */
    w->out = grown;
    w->capout = cap;
  }
  int64_t in = c->bytes[0] - c->header;
  w->out[w->nout++] = (ended){ c->id, (double)(in < 0 ? 0 : in), (double)c->bytes[1], reason };
}

/* Ends a pair: both sockets closed (unread data makes the kernel reset, as a cut should). */
static void kill_conn(worker *w, conn *c, int reason, int report) {
  if (c->dead) return;
  c->dead = 1;
  if (c->prev) c->prev->next = c->next; else w->live = c->next;
  if (c->next) c->next->prev = c->prev;
  for (int i = 0; i < 2; i++) {
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd[i], NULL);
    close(c->fd[i]);
    free(c->pend[i].buf);
    c->pend[i].buf = NULL;
  }
  if (report) emit(w, c, reason);
  c->dnext = w->dead;
  w->dead = c;
}

/*
 * Moves what it can in direction d (0: client to upstream). Edge-triggered: `readable` and
 * `writable` remember what epoll said until a call returns EAGAIN. Returns -1 on a socket
 * error; sets *more when the budget ran out with data left, *moved when bytes moved.
 */
static int pump(worker *w, conn *c, int d, int *more, int *moved) {
  int from = d, to = 1 - d;
  pending *p = &c->pend[d];
  int budget = BUDGET;
  for (;;) {
    if (p->len) {
      if (!c->writable[to]) break;
      ssize_t k = send(c->fd[to], p->buf + p->off, p->len, MSG_NOSIGNAL);
      if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) { c->writable[to] = 0; break; }
        if (errno == EINTR) continue;
        return -1;
      }
      p->off += (uint32_t)k;
      p->len -= (uint32_t)k;
      c->bytes[d] += k;
      *moved = 1;
      if (p->len) { c->writable[to] = 0; break; } /* send buffer full: EPOLLOUT will say when */
      free(p->buf);
      p->buf = NULL;
      p->off = 0;
      continue;
    }
    if (c->eof[d] || !c->readable[from]) break;
    if (budget-- == 0) { *more = 1; break; }
    ssize_t n = recv(c->fd[from], w->buf, CHUNK, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) { c->readable[from] = 0; break; }
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) { c->eof[d] = 1; break; }
    *moved = 1;
    /* A short read emptied the receive queue; new data raises a new edge. Not after a
     * FIN was seen: the 0-byte read that reports it raises no edge of its own. */
    if (n < CHUNK && !c->rdhup[from]) c->readable[from] = 0;
    ssize_t k = 0;
    if (c->writable[to]) {
      k = send(c->fd[to], w->buf, (size_t)n, MSG_NOSIGNAL);
      if (k < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        k = 0;
      }
    }
    c->bytes[d] += k;
    if (k < n) {
      /* The other side is slower: keep the rest and stop reading this way until it drains
       * (backpressure, at most one CHUNK held per direction). */
      p->buf = malloc((size_t)(n - k));
      if (!p->buf) return -1;
      memcpy(p->buf, w->buf + k, (size_t)(n - k));
      p->off = 0;
      p->len = (uint32_t)(n - k);
      c->writable[to] = 0;
    }
  }
  if (c->eof[d] && !p->len && !c->shut[d]) {
    shutdown(c->fd[to], SHUT_WR); /* half-close crosses the relay */
    c->shut[d] = 1;
  }
  return 0;
}

static void service(worker *w, conn *c, int64_t now) {
  int more = 0, moved = 0;
  for (int d = 0; d < 2; d++) {
    if (pump(w, c, d, &more, &moved) < 0) { kill_conn(w, c, R_RESET, 1); return; }
  }
  if (c->shut[0] && c->shut[1]) { kill_conn(w, c, R_DONE, 1); return; }
  if (moved) c->last_ms = now;
  if (more && !c->queued) { c->queued = 1; c->rnext = w->ready; w->ready = c; }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void take_commands(worker *w, int64_t now) {
  uint64_t v;
  while (read(w->efd, &v, sizeof v) > 0) {}
  pthread_mutex_lock(&w->mu);
  cmd *q = w->head;
  w->head = w->tail = NULL;
  pthread_mutex_unlock(&w->mu);
  double *cuts = NULL;
  size_t ncuts = 0, capcuts = 0;
  while (q) {
    cmd *next = q->next;
    if (q->kind == CMD_STOP) w->stopping = 1;
    else if (q->kind == CMD_CUT) {
      if (ncuts == capcuts) {
        capcuts = capcuts ? capcuts * 2 : 16;
        double *grown = realloc(cuts, capcuts * sizeof(double));
        if (grown) cuts = grown; else capcuts = ncuts;
      }
      if (ncuts < capcuts) cuts[ncuts++] = q->id;
    } else {
      conn *c = q->c;
      c->next = w->live;
      if (w->live) w->live->prev = c;
      w->live = c;
      c->last_ms = now;
      if (c->idle_ms > 0) {
        int64_t scan = c->idle_ms / 4;
        if (scan < SCAN_MIN_MS) scan = SCAN_MIN_MS;
        if (scan > SCAN_MAX_MS) scan = SCAN_MAX_MS;
        if (scan < w->scan_ms) { w->scan_ms = scan; if (w->next_scan > now + scan) w->next_scan = now + scan; }
      }
      int ok = 1;
      for (int i = 0; i < 2; i++) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)i };
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd[i], &ev) < 0) ok = 0;
      }
      if (ok) service(w, c, now); else kill_conn(w, c, R_RESET, 1);
    }
    free(q);
    q = next;
  }
  if (ncuts) {
    /* One pass over the live list for all cuts at once: draining a backend cuts many. */
    qsort(cuts, ncuts, sizeof(double), cmp_double);
    for (conn *c = w->live, *next; c; c = next) {
      next = c->next;
      if (bsearch(&c->id, cuts, ncuts, sizeof(double), cmp_double)) kill_conn(w, c, R_CUT, 1);
    }
  }
  free(cuts);
}

static void flush(worker *w) {
  if (!w->nout) return;
  batch *b = malloc(sizeof(batch) + w->nout * sizeof(ended));
  if (b) {
    b->n = w->nout;
    memcpy(b->e, w->out, w->nout * sizeof(ended));
    if (napi_call_threadsafe_function(w->relay->tsfn, b, napi_tsfn_nonblocking) != napi_ok) free(b);
  }
  w->nout = 0;
}

static void reap(worker *w) {
  conn **link = &w->dead;
  while (*link) {
    conn *c = *link;
    if (c->queued) { link = &c->dnext; continue; } /* still on the ready list: next round */
    *link = c->dnext;
    free(c);
  }
}

static void *run(void *arg) {
  worker *w = arg;
  struct epoll_event evs[MAX_EVENTS];
  while (!w->stopping) {
    int64_t now = now_ms();
    int timeout = -1;
    if (w->ready) timeout = 0;
    else if (w->live && w->scan_ms < INT64_MAX) timeout = (int)(w->next_scan > now ? w->next_scan - now : 0);
    int n = epoll_wait(w->ep, evs, MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR) break;
    now = now_ms();
    for (int i = 0; i < n; i++) {
      uint64_t u = evs[i].data.u64;
      if (u == 0) { take_commands(w, now); continue; }
      conn *c = (conn *)(uintptr_t)(u & ~(uint64_t)1);
      int side = (int)(u & 1);
      if (c->dead) continue;
      uint32_t e = evs[i].events;
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->readable[side] = 1;
      if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->rdhup[side] = 1;
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->writable[side] = 1;
      service(w, c, now);
    }
    conn *r = w->ready;
    w->ready = NULL;
    while (r) {
      conn *next = r->rnext;
      r->queued = 0;
      if (!r->dead) service(w, r, now);
      r = next;
    }
    if (w->live && now >= w->next_scan) {
      for (conn *c = w->live, *next; c; c = next) {
        next = c->next;
        if (c->idle_ms > 0 && now - c->last_ms >= c->idle_ms) kill_conn(w, c, R_IDLE, 1);
      }
      w->next_scan = now + w->scan_ms;
    }
    reap(w);
    flush(w);
  }
  /* Stopping: the owner accounts for what is left; close it without reports. */
  while (w->live) kill_conn(w, w->live, R_CUT, 0);
  for (conn *r = w->ready; r; r = r->rnext) r->queued = 0;
  w->ready = NULL;
  reap(w);
  return NULL;
}

static void post(worker *w, cmd *q) {
  pthread_mutex_lock(&w->mu);
  int wake = w->head == NULL; /* the thread drains the whole queue per wake-up */
  if (w->tail) w->tail->next = q; else w->head = q;
  w->tail = q;
  pthread_mutex_unlock(&w->mu);
  if (wake) { uint64_t one = 1; ssize_t r = write(w->efd, &one, sizeof one); (void)r; }
}

/* ---- JavaScript side ---------------------------------------------------------------- */

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "BEACON_RELAY", #call " failed"); return NULL; } } while (0)

static void call_js(napi_env env, napi_value fn, void *ctx, void *data) {
  (void)ctx;
  batch *b = data;
  if (env && fn) {
    void *mem;
    napi_value ab, arr, undef;
    size_t len = b->n * 4;
    if (napi_create_arraybuffer(env, len * sizeof(double), &mem, &ab) == napi_ok) {
      memcpy(mem, b->e, len * sizeof(double));
      napi_create_typedarray(env, napi_float64_array, len, ab, 0, &arr);
      napi_get_undefined(env, &undef);
      napi_call_function(env, undef, fn, 1, &arr, NULL);
    }
  }
  free(b);
}

static void stop_all(relay *r) {
  if (r->closed) return;
  r->closed = 1;
  for (int i = 0; i < r->n; i++) {
    worker *w = &r->w[i];
    if (!w->started) continue;
    cmd *q = calloc(1, sizeof(cmd));
    if (q) { q->kind = CMD_STOP; post(w, q); }
    else { w->stopping = 1; uint64_t one = 1; ssize_t x = write(w->efd, &one, sizeof one); (void)x; }
  }
  for (int i = 0; i < r->n; i++) {
    worker *w = &r->w[i];
    if (w->started) pthread_join(w->thread, NULL);
    for (cmd *q = w->head, *next; q; q = next) {
      next = q->next;
      if (q->kind == CMD_ADD) { close(q->c->fd[0]); close(q->c->fd[1]); free(q->c->pend[0].buf); free(q->c); }
      free(q);
    }
    w->head = w->tail = NULL;
    if (w->ep >= 0) close(w->ep);
    if (w->efd >= 0) close(w->efd);
    w->ep = w->efd = -1;
    free(w->buf);
    free(w->out);
    w->buf = NULL;
    w->out = NULL;
    pthread_mutex_destroy(&w->mu);
  }
  if (r->tsfn) napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  r->tsfn = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  relay *r = data;
  stop_all(r);
  free(r->w);
  free(r);
}

static relay *get_relay(napi_env env, napi_value v) {
  relay *r = NULL;
  if (napi_get_value_external(env, v, (void **)&r) != napi_ok || !r) {
    napi_throw_type_error(env, "BEACON_RELAY", "not a relay");
    return NULL;
  }
  return r;
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n = 1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1 || n > 64) {
    napi_throw_range_error(env, "BEACON_RELAY", "create(workers 1..64, onEnded)");
    return NULL;
  }
  relay *r = calloc(1, sizeof(relay));
  worker *ws = calloc((size_t)n, sizeof(worker));
  if (!r || !ws) { free(r); free(ws); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  r->w = ws;
  r->n = n;
  CHECK(napi_create_string_utf8(env, "beacon-relay", NAPI_AUTO_LENGTH, &name));
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &r->tsfn) != napi_ok) {
    free(ws); free(r);
    napi_throw_type_error(env, "BEACON_RELAY", "onEnded must be a function");
    return NULL;
  }
  /* The relay must not keep the process alive by itself: listeners and sockets do that. */
  napi_unref_threadsafe_function(env, r->tsfn);
  for (int i = 0; i < n; i++) {
    worker *w = &ws[i];
    w->relay = r;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->buf = malloc(CHUNK);
    w->scan_ms = INT64_MAX;
    w->next_scan = INT64_MAX;
    pthread_mutex_init(&w->mu, NULL);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
    if (w->ep < 0 || w->efd < 0 || !w->buf || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &ev) < 0
        || pthread_create(&w->thread, NULL, run, w) != 0) {
      r->n = i + 1;
      stop_all(r);
      free(ws); free(r);
      napi_throw_error(env, "BEACON_RELAY", "cannot start relay thread");
      return NULL;
    }
    w->started = 1;
  }
  CHECK(napi_create_external(env, r, finalize, NULL, &out));
  return out;
}

static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) { napi_throw_type_error(env, "BEACON_RELAY", "add(relay, id, clientFd, upstreamFd, idleMs, header?)"); return NULL; }
  relay *r = get_relay(env, argv[0]);
  if (!r) return NULL;
  if (r->closed) { napi_throw_error(env, "BEACON_RELAY_CLOSED", "relay is closed"); return NULL; }
  double id, idle;
  int32_t fa, fb;
  CHECK(napi_get_value_double(env, argv[1], &id));
  CHECK(napi_get_value_int32(env, argv[2], &fa));
  CHECK(napi_get_value_int32(env, argv[3], &fb));
  CHECK(napi_get_value_double(env, argv[4], &idle));
  void *hdr = NULL;
  size_t hlen = 0;
  if (argc > 5) {
    bool is_buffer = false;
    napi_is_buffer(env, argv[5], &is_buffer);
    if (is_buffer) CHECK(napi_get_buffer_info(env, argv[5], &hdr, &hlen));
  }
  conn *c = calloc(1, sizeof(conn));
  if (!c) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  c->fd[0] = fcntl(fa, F_DUPFD_CLOEXEC, 0);
  c->fd[1] = c->fd[0] < 0 ? -1 : fcntl(fb, F_DUPFD_CLOEXEC, 0);
  if (c->fd[1] < 0) {
    int err = errno;
    if (c->fd[0] >= 0) close(c->fd[0]);
    free(c);
    napi_throw_error(env, err == EMFILE ? "EMFILE" : "BEACON_RELAY", strerror(err));
    return NULL;
  }
  c->id = id;
  c->idle_ms = idle > 0 ? (int64_t)idle : 0;
  for (int i = 0; i < 2; i++) { c->readable[i] = 1; c->writable[i] = 1; }
  if (hlen) {
    c->pend[0].buf = malloc(hlen);
    if (!c->pend[0].buf) { close(c->fd[0]); close(c->fd[1]); free(c); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
    memcpy(c->pend[0].buf, hdr, hlen);
    c->pend[0].len = (uint32_t)hlen;
    c->header = (int64_t)hlen;
  }
  cmd *q = calloc(1, sizeof(cmd));
  if (!q) { close(c->fd[0]); close(c->fd[1]); free(c->pend[0].buf); free(c); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  q->kind = CMD_ADD;
  q->c = c;
  post(&r->w[(uint64_t)id % (uint64_t)r->n], q);
  return NULL;
}

static napi_value js_cut(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 2 ? get_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  if (r->closed) return NULL;
  double id;
  CHECK(napi_get_value_double(env, argv[1], &id));
  cmd *q = calloc(1, sizeof(cmd));
  if (!q) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  q->kind = CMD_CUT;
  q->id = id;
  post(&r->w[(uint64_t)id % (uint64_t)r->n], q);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 1 ? get_relay(env, argv[0]) : NULL;
  if (r) stop_all(r);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "create", NULL, js_create, NULL, NULL, NULL, napi_enumerable, NULL },
    { "add", NULL, js_add, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cut", NULL, js_cut, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, 4, props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
