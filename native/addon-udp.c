/*
 * The N-API surface for UDP frontends (see addon.c's header for the calls and reports):
 * the socket is bound here, on the JavaScript thread, so errors come back at once; the
 * worker that owns it (udp.c) does the rest.
 */
#include "addon.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

napi_value js_udp_listen(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 6 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  uint32_t lid, port, max_flows;
  double idle;
  if (napi_get_value_uint32(env, argv[1], &lid) != napi_ok || napi_get_value_uint32(env, argv[3], &port) != napi_ok
      || napi_get_value_double(env, argv[4], &idle) != napi_ok || napi_get_value_uint32(env, argv[5], &max_flows) != napi_ok) {
    napi_throw_type_error(env, "BEACON_RELAY", "udpListen(relay, listenerId, ip, port, idleMs, maxFlows)");
    return NULL;
  }
  struct sockaddr_storage sa;
  socklen_t len;
  if (port > 65535 || to_sockaddr(env, argv[2], port, &sa, &len) < 0) { napi_throw_type_error(env, "BEACON_RELAY", "udpListen: not an IP address and port"); return NULL; }
  int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, "socket"); return NULL; }
  int one = 1;
  if (sa.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, len) < 0) { /* no SO_REUSEADDR: a UDP port is never shared */
    int err = errno;
    close(fd);
    throw_errno(env, err, "bind");
    return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  uint32_t actual = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port : ((struct sockaddr_in *)&bound)->sin_port);
  ucount *count = calloc(1, sizeof *count);
  cmd *q = calloc(1, sizeof(cmd));
  if (count) count->lid = lid;
  struct ulistener *u = count && q ? udp_new_listener(fd, count, idle > 0 ? (int64_t)idle : 0, max_flows) : NULL;
  if (!u) { free(count); free(q); close(fd); napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  count->next = r->counts;
  r->counts = count;
  q->kind = CMD_UDP_LISTEN;
  q->u = u;
  submit(r, &r->w[lid % (uint32_t)r->n], q); /* one worker owns a frontend and its whole flow table */
  CHECK(napi_create_uint32(env, actual, &out));
  return out;
}

napi_value js_udp_unlisten(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 2 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  uint32_t lid;
  CHECK(napi_get_value_uint32(env, argv[1], &lid));
  cmd *q = calloc(1, sizeof(cmd));
  if (!q) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  q->kind = CMD_UDP_UNLISTEN;
  q->lid = lid;
  submit(r, &r->w[lid % (uint32_t)r->n], q);
  return NULL;
}

napi_value js_udp_connect(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) { napi_throw_type_error(env, "BEACON_RELAY", "udpConnect(relay, flowId, listenerId, tag, ip, port)"); return NULL; }
  relay *r;
  cmd *q = id_cmd(env, argv[0], argv[1], CMD_UDP_CONNECT, &r);
  if (!q) return NULL;
  uint32_t port;
  if (napi_get_value_uint32(env, argv[2], &q->lid) != napi_ok || napi_get_value_uint32(env, argv[3], &q->tag) != napi_ok
      || napi_get_value_uint32(env, argv[5], &port) != napi_ok || port > 65535 || to_sockaddr(env, argv[4], port, &q->to, &q->tolen) < 0) {
    free_cmd(q);
    napi_throw_type_error(env, "BEACON_RELAY", "udpConnect: bad arguments");
    return NULL;
  }
  post_to_owner(r, q);
  return NULL;
}

napi_value js_udp_reject(napi_env env, napi_callback_info info) { return js_simple(env, info, CMD_UDP_REJECT); }

napi_value js_udp_counters(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 2 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  uint32_t lid;
  CHECK(napi_get_value_uint32(env, argv[1], &lid));
  ucount *c = r->counts;
  while (c && c->lid != lid) c = c->next;
  int64_t vals[5] = { 0, 0, 0, 0, 0 };
  if (c) {
    vals[0] = __atomic_load_n(&c->bytes_in, __ATOMIC_ACQUIRE);
    vals[1] = __atomic_load_n(&c->bytes_out, __ATOMIC_ACQUIRE);
    vals[2] = __atomic_load_n(&c->flows, __ATOMIC_ACQUIRE);
    vals[3] = __atomic_load_n(&c->evictions, __ATOMIC_ACQUIRE);
    vals[4] = __atomic_load_n(&c->dropped, __ATOMIC_ACQUIRE);
  }
  CHECK(napi_create_array_with_length(env, 5, &out));
  for (uint32_t i = 0; i < 5; i++) {
    CHECK(napi_create_double(env, (double)vals[i], &v));
    CHECK(napi_set_element(env, out, i, v));
  }
  return out;
}
