/*
 * Beacon's native relay, the N-API surface (ABI-stable: one build loads on Node 20 and 24);
 * listeners in addon-listen.c, UDP frontends in addon-udp.c.
 * JavaScript calls, all on its own thread:
 *   create(workers, onReports(Float64Array, length)) -> relay threads start here
 *   listen(relay, listenerId, ip, port, keepAliveS) -> port   throws {code: 'EADDRINUSE', ...}
 *   unlisten(relay, listenerId)
 *   connect(relay, id, tag, ip, port, timeoutMs, idleMs, keepAliveS, header?)
 *   reject(relay, id)                                         closes an accepted client
 *   add(relay, clientFd, upstreamFd, idleMs, header?) -> id   takes over a pair Node connected
 *   cut(relay, id)
 *   cutTag(relay, listenerId, tag)                            every connection of the listener
 *                                                             connected with tag (-1: all)
 *   routes(relay, listenerId, gen, [tag, ip, port, ...], timeoutMs, idleMs, keepAliveS, maxOpen)
 *                                                             the listener's route (route.c); [] ends it
 *   close(relay)                                              idempotent; joins the threads
 * Reports come back in batches of 8 doubles each (relay.h EV_*):
 *   [0, id, bytesIn, bytesOut, reason, listenerId, tag]  a relayed connection ended
 *   [1, id, listenerId, port(+65536 if v6)(+131072 x (tag+1) if its route connects it), a0, a1, a2, a3]
 *                                           accepted; unless its route connects it, JavaScript
 *                                           answers connect or reject
 *   [2, id, connectMs, listenerId, tag]     the upstream connected; relaying
 *   [3, id, errno, listenerId, tag]         the upstream did not; answer connect or reject again
 *   [4, flowId, listenerId, port(+65536 if v6), a0, a1, a2, a3]  a new UDP flow; answer udpConnect or udpReject
 *   [5, flowId, bytesIn, bytesOut, reason, listenerId, tag]  a UDP flow udpConnect was called for ended
 *   [6, gen, listenerId]                    one worker took the listener's route `gen`
 *   [7, 0, listenerId]                      its route's maxOpen was reached: a client was closed
 * listenerId is 0 for a pair add() took over. UDP (udp.c):
 *   udpListen(relay, listenerId, ip, port, idleMs, maxFlows) -> port   throws {code: 'EADDRINUSE', ...}
 *   udpUnlisten(relay, listenerId)                            closes it and ends its flows
 *   udpConnect(relay, flowId, listenerId, tag, ip, port)
 *   udpReject(relay, flowId)
 *   udpCounters(relay, listenerId) -> [bytesIn, bytesOut, flows, evictions, dropped, refused]
 */
#include "addon.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>



/* On the JavaScript thread: to worker w now, or with the rest of a report batch's answers. */
void submit(relay *r, worker *w, cmd *q) {
  if (!r->corked) { post(w, q); return; }
  if (w->staged_tail) w->staged_tail->next = q; else w->staged = q;
  w->staged_tail = q;
}

void uncork(relay *r) {
  r->corked = 0;
  for (int i = 0; i < r->n; i++) {
    worker *w = &r->w[i];
    if (!w->staged) continue;
    post_list(w, w->staged, w->staged_tail);
    w->staged = w->staged_tail = NULL;
  }
}

int cmds_for_all(relay *r, int kind, cmd *qs[MAX_WORKERS]) {
  for (int i = 0; i < r->n; i++) {
    if ((qs[i] = calloc(1, sizeof(cmd)))) { qs[i]->kind = kind; continue; }
    while (i > 0) free(qs[--i]);
    return -1;
  }
  return 0;
}

void submit_all(relay *r, cmd *qs[MAX_WORKERS]) {
  for (int i = 0; i < r->n; i++) submit(r, &r->w[i], qs[i]);
}

void free_all(relay *r, cmd *qs[MAX_WORKERS]) {
  for (int i = 0; i < r->n; i++) free_cmd(qs[i]);
}

static void stop_all(relay *r) {
  if (r->closed) return;
  if (r->corked) uncork(r); /* closed from a report handler: what it staged is freed below */
  if (r->sink) r->sink->r = NULL;
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
      /* A listener this worker never took: give back its reference. */
      if (q->kind == CMD_UDP_LISTEN) udp_free_listener(q->u);
      if (q->kind == CMD_LISTEN) release_listener(q->l);
      free_cmd(q);
    }
    w->head = w->tail = NULL;
    if (w->ep >= 0) close(w->ep);
    if (w->efd >= 0) close(w->efd);
    w->ep = w->efd = -1;
    splice_close_pool(w);
    free(w->buf);
    free(w->out);
    w->buf = NULL;
    w->out = NULL;
    pthread_mutex_destroy(&w->mu);
  }
  r->listeners = NULL; /* the workers released them on their way out */
  for (ucount *c = r->counts, *next; c; c = next) { next = c->next; free(c); }
  r->counts = NULL;
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

relay *open_relay(napi_env env, napi_value v) {
  relay *r = NULL;
  if (napi_get_value_external(env, v, (void **)&r) != napi_ok || !r) {
    napi_throw_type_error(env, "BEACON_RELAY", "not a relay");
    return NULL;
  }
  if (r->closed) { napi_throw_error(env, "BEACON_RELAY_CLOSED", "relay is closed"); return NULL; }
  return r;
}

void throw_errno(napi_env env, int err, const char *what) {
  char msg[160];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "BEACON_RELAY", msg);
}

/* "ip", port -> sockaddr; 0 on success. */
int to_sockaddr(napi_env env, napi_value ip, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  char text[64];
  size_t n = 0;
  if (napi_get_value_string_utf8(env, ip, text, sizeof text, &n) != napi_ok) return -1;
  memset(out, 0, sizeof *out);
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return 0;
  }
  return -1;
}

static int get_header(napi_env env, napi_value v, char **out, uint32_t *len) {
  bool is_buffer = false;
  *out = NULL;
  *len = 0;
  napi_is_buffer(env, v, &is_buffer);
  if (!is_buffer) return 0;
  void *data;
  size_t n;
  if (napi_get_buffer_info(env, v, &data, &n) != napi_ok) return -1;
  if (!n) return 0;
  *out = malloc(n);
  if (!*out) return -1;
  memcpy(*out, data, n);
  *len = (uint32_t)n;
  return 0;
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n = 1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1 || n > MAX_WORKERS) {
    napi_throw_range_error(env, "BEACON_RELAY", "create(workers 1..16, onReports)");
    return NULL;
  }
  relay *r = calloc(1, sizeof(relay));
  worker *ws = calloc((size_t)n, sizeof(worker));
  if (!r || !ws) { free(r); free(ws); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  r->w = ws;
  r->n = n;
  const char *sp = getenv("BEACON_SPLICE");
  r->splice = !(sp && strcmp(sp, "off") == 0);
  CHECK(napi_create_string_utf8(env, "beacon-relay", NAPI_AUTO_LENGTH, &name));
  sink *k = calloc(1, sizeof(sink));
  if (!k || napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, k, free_sink, k, call_js, &r->tsfn) != napi_ok) {
    free(k); free(ws); free(r);
    napi_throw_type_error(env, "BEACON_RELAY", "onReports must be a function");
    return NULL;
  }
  k->r = r;
  r->sink = k;
  /* The relay must not keep the process alive by itself: the owner's close() ends it. */
  napi_unref_threadsafe_function(env, r->tsfn);
  for (int i = 0; i < n; i++) {
    worker *w = &ws[i];
    w->relay = r;
    w->index = i;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->buf = malloc(CHUNK);
    w->scan_ms = INT64_MAX;
    w->next_scan = INT64_MAX;
    pthread_mutex_init(&w->mu, NULL);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
    if (w->ep < 0 || w->efd < 0 || !w->buf || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &ev) < 0
        || pthread_create(&w->thread, NULL, worker_run, w) != 0) {
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

cmd *id_cmd(napi_env env, napi_value vr, napi_value vid, int kind, relay **rp) {
  relay *r = open_relay(env, vr);
  if (!r) return NULL;
  double id;
  if (napi_get_value_double(env, vid, &id) != napi_ok || id < 0) { napi_throw_type_error(env, "BEACON_RELAY", "id must be a number"); return NULL; }
  cmd *q = calloc(1, sizeof(cmd));
  if (!q) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  q->kind = kind;
  q->id = (uint64_t)id;
  *rp = r;
  return q;
}

/* To the worker that owns connection q->id (its index is in the id's low bits). */
void post_to_owner(relay *r, cmd *q) {
  if ((int)(q->id & (MAX_WORKERS - 1)) >= r->n) { free_cmd(q); return; } /* not an id of ours */
  submit(r, &r->w[q->id & (MAX_WORKERS - 1)], q);
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) { napi_throw_type_error(env, "BEACON_RELAY", "connect(relay, id, tag, ip, port, timeoutMs, idleMs, keepAliveS, header?)"); return NULL; }
  relay *r;
  cmd *q = id_cmd(env, argv[0], argv[1], CMD_CONNECT, &r);
  if (!q) return NULL;
  uint32_t port;
  double timeout, idle;
  int32_t keepalive;
  if (napi_get_value_uint32(env, argv[2], &q->tag) != napi_ok
      || napi_get_value_uint32(env, argv[4], &port) != napi_ok || port > 65535 || to_sockaddr(env, argv[3], port, &q->to, &q->tolen) < 0
      || napi_get_value_double(env, argv[5], &timeout) != napi_ok || napi_get_value_double(env, argv[6], &idle) != napi_ok
      || napi_get_value_int32(env, argv[7], &keepalive) != napi_ok || (argc > 8 && get_header(env, argv[8], &q->header, &q->hlen) < 0)) {
    free_cmd(q);
    napi_throw_type_error(env, "BEACON_RELAY", "connect: bad arguments");
    return NULL;
  }
  q->timeout_ms = (int64_t)timeout;
  q->idle_ms = (int64_t)idle;
  q->keepalive_s = keepalive;
  post_to_owner(r, q);
  return NULL;
}

napi_value js_simple(napi_env env, napi_callback_info info, int kind) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, "BEACON_RELAY", "(relay, id)"); return NULL; }
  relay *r;
  cmd *q = id_cmd(env, argv[0], argv[1], kind, &r);
  if (!q) return NULL;
  post_to_owner(r, q);
  return NULL;
}

static napi_value js_reject(napi_env env, napi_callback_info info) { return js_simple(env, info, CMD_REJECT); }
static napi_value js_cut(napi_env env, napi_callback_info info) { return js_simple(env, info, CMD_CUT); }

static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) { napi_throw_type_error(env, "BEACON_RELAY", "add(relay, clientFd, upstreamFd, idleMs, header?)"); return NULL; }
  relay *r = open_relay(env, argv[0]);
  if (!r) return NULL;
  int32_t fa, fb;
  double idle;
  CHECK(napi_get_value_int32(env, argv[1], &fa));
  CHECK(napi_get_value_int32(env, argv[2], &fb));
  CHECK(napi_get_value_double(env, argv[3], &idle));
  conn *c = calloc(1, sizeof(conn));
  if (!c) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  char *hdr = NULL;
  uint32_t hlen = 0;
  if (argc > 4 && get_header(env, argv[4], &hdr, &hlen) < 0) { free(c); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  c->fd[0] = fcntl(fa, F_DUPFD_CLOEXEC, 0);
  c->fd[1] = c->fd[0] < 0 ? -1 : fcntl(fb, F_DUPFD_CLOEXEC, 0);
  if (c->fd[1] < 0) {
    int err = errno;
    if (c->fd[0] >= 0) close(c->fd[0]);
    free(c);
    free(hdr);
    throw_errno(env, err, "dup");
    return NULL;
  }
  c->idle_ms = idle > 0 ? (int64_t)idle : 0;
  if (hlen) { c->pend[0] = (pending){ hdr, 0, hlen }; c->header = hlen; }
  static unsigned rr;
  worker *w = &r->w[rr++ % (unsigned)r->n];
  c->id = new_id(w);
  c->state = S_WAITING;
  cmd *q = calloc(1, sizeof(cmd));
  if (!q) { close(c->fd[0]); close(c->fd[1]); free(hdr); free(c); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  q->kind = CMD_ADD;
  q->c = c;
  uint64_t id = c->id; /* read before posting: the worker may end and free c at once */
  submit(r, w, q);
  CHECK(napi_create_double(env, (double)id, &out));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&r) != napi_ok || !r) { napi_throw_type_error(env, "BEACON_RELAY", "not a relay"); return NULL; }
  stop_all(r);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "create", NULL, js_create, NULL, NULL, NULL, napi_enumerable, NULL },
    { "listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unlisten", NULL, js_unlisten, NULL, NULL, NULL, napi_enumerable, NULL },
    { "connect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL },
    { "reject", NULL, js_reject, NULL, NULL, NULL, napi_enumerable, NULL },
    { "add", NULL, js_add, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cut", NULL, js_cut, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cutTag", NULL, js_cut_tag, NULL, NULL, NULL, napi_enumerable, NULL },
    { "routes", NULL, js_routes, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpListen", NULL, js_udp_listen, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpUnlisten", NULL, js_udp_unlisten, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpConnect", NULL, js_udp_connect, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpReject", NULL, js_udp_reject, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpCounters", NULL, js_udp_counters, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
