/*
 * The N-API surface for TCP listeners (see addon.c's header for the calls): bound here, on
 * the JavaScript thread, so errors come back at once; every worker then accepts on it.
 * Their routes (route.c) are handed to every worker from here too.
 */
#include "addon.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* listen(2) backlog: Node's default for net.Server (511), which HAProxy's maxconn-sized
 * backlog would exceed only under far more load than one Service port sees. */
#define BACKLOG 511

napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 5 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  double id;
  uint32_t port;
  int32_t keepalive;
  CHECK(napi_get_value_double(env, argv[1], &id));
  CHECK(napi_get_value_uint32(env, argv[3], &port));
  CHECK(napi_get_value_int32(env, argv[4], &keepalive));
  struct sockaddr_storage sa;
  socklen_t len;
  if (port > 65535 || to_sockaddr(env, argv[2], port, &sa, &len) < 0) { napi_throw_type_error(env, "BEACON_RELAY", "listen: not an IP address and port"); return NULL; }
  int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, "socket"); return NULL; }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* restart while old connections sit in TIME_WAIT, as Node does */
  if (sa.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  set_keepalive(fd, keepalive); /* accepted connections inherit it (worker.c) */
  if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, BACKLOG) < 0) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "listen");
    return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  uint32_t actual = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port : ((struct sockaddr_in *)&bound)->sin_port);
  cmd *qs[MAX_WORKERS];
  listener *l = cmds_for_all(r, CMD_LISTEN, qs) < 0 ? NULL : calloc(1, sizeof(listener));
  if (l) l->gate = gate_new();
  if (!l || !l->gate) {
    if (l) free_all(r, qs);
    free(l);
    close(fd);
    napi_throw_error(env, "BEACON_RELAY", "out of memory");
    return NULL;
  }
  l->fd = fd;
  l->id = id;
  l->refs = r->n;
  l->next = r->listeners;
  r->listeners = l;
  for (int i = 0; i < r->n; i++) qs[i]->l = l;
  submit_all(r, qs);
  CHECK(napi_create_uint32(env, actual, &out));
  return out;
}

napi_value js_unlisten(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 2 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  double id;
  CHECK(napi_get_value_double(env, argv[1], &id));
  for (listener **link = &r->listeners; *link; link = &(*link)->next) {
    listener *l = *link;
    if (l->id != id) continue;
    cmd *qs[MAX_WORKERS];
    if (cmds_for_all(r, CMD_UNLISTEN, qs) < 0) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
    *link = l->next;
    for (int i = 0; i < r->n; i++) qs[i]->l = l;
    submit_all(r, qs);
    break;
  }
  return NULL;
}

napi_value js_cut_tag(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, "BEACON_RELAY", "cutTag(relay, listenerId, tag)"); return NULL; }
  relay *r = open_relay(env, argv[0]);
  if (!r) return NULL;
  uint32_t lid;
  int32_t tag;
  if (napi_get_value_uint32(env, argv[1], &lid) != napi_ok || napi_get_value_int32(env, argv[2], &tag) != napi_ok) {
    napi_throw_type_error(env, "BEACON_RELAY", "cutTag: bad arguments");
    return NULL;
  }
  /* Any worker may own some of them: each gets the command. */
  cmd *qs[MAX_WORKERS];
  if (cmds_for_all(r, CMD_CUT_TAG, qs) < 0) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  for (int i = 0; i < r->n; i++) {
    qs[i]->lid = lid;
    qs[i]->tag = tag == -2 ? REFUSED_TAGS : tag < 0 ? ALL_TAGS : (uint32_t)tag;
  }
  submit_all(r, qs);
  return NULL;
}

/* routes(relay, listenerId, gen, [tag, ip, port, ...], timeoutMs, idleMs, keepAliveS, maxOpen):
 * every worker gets its own copy of the route (route.c); an empty list ends it. */
napi_value js_routes(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 8 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  uint32_t lid, gen, len;
  double timeout, idle;
  int32_t keepalive, max_open;
  bool is_array = false;
  if (napi_get_value_uint32(env, argv[1], &lid) != napi_ok || napi_get_value_uint32(env, argv[2], &gen) != napi_ok
      || napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[3], &len) != napi_ok || len % 3
      || napi_get_value_double(env, argv[4], &timeout) != napi_ok || napi_get_value_double(env, argv[5], &idle) != napi_ok
      || napi_get_value_int32(env, argv[6], &keepalive) != napi_ok || napi_get_value_int32(env, argv[7], &max_open) != napi_ok) {
    napi_throw_type_error(env, "BEACON_RELAY", "routes(relay, listenerId, gen, [tag, ip, port, ...], timeoutMs, idleMs, keepAliveS, maxOpen)");
    return NULL;
  }
  uint32_t n = len / 3;
  size_t size = sizeof(route) + n * sizeof(rbackend);
  route *rt = calloc(1, size);
  if (!rt) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  *rt = (route){ .lid = lid, .gen = gen, .n = n, .timeout_ms = (int64_t)timeout, .idle_ms = idle > 0 ? (int64_t)idle : 0,
                 .keepalive_s = keepalive, .max_open = max_open };
  for (uint32_t i = 0; i < n; i++) {
    napi_value tag, ip, port;
    uint32_t p;
    if (napi_get_element(env, argv[3], 3 * i, &tag) != napi_ok || napi_get_value_uint32(env, tag, &rt->b[i].tag) != napi_ok
        || napi_get_element(env, argv[3], 3 * i + 1, &ip) != napi_ok || napi_get_element(env, argv[3], 3 * i + 2, &port) != napi_ok
        || napi_get_value_uint32(env, port, &p) != napi_ok || p > 65535 || to_sockaddr(env, ip, p, &rt->b[i].to, &rt->b[i].tolen) < 0) {
      free(rt);
      napi_throw_type_error(env, "BEACON_RELAY", "routes: each backend is tag, IP address, port");
      return NULL;
    }
  }
  /* Every worker its own copy, or none gets one: a route half the workers took would never
   * be acknowledged by all (native-frontend.ts counts on it). */
  cmd *qs[MAX_WORKERS];
  int made = cmds_for_all(r, CMD_ROUTES, qs) == 0, ok = made;
  for (int i = 0; ok && i < r->n; i++) {
    if ((qs[i]->route = malloc(size))) memcpy(qs[i]->route, rt, size);
    else ok = 0;
  }
  free(rt);
  if (!ok) {
    if (made) free_all(r, qs); /* free_cmd frees a route copy too */
    napi_throw_error(env, "BEACON_RELAY", "out of memory");
    return NULL;
  }
  submit_all(r, qs);
  return NULL;
}
