/*
 * The N-API surface for UDP frontends (see addon.c's header for the calls and reports):
 * the sockets are bound here, on the JavaScript thread, so errors come back at once; the
 * workers that own them (udp.c) do the rest. A frontend is one socket per worker, all bound
 * to its address with SO_REUSEPORT, as NGINX's `listen ... udp reuseport` with a worker per
 * core: the kernel picks the socket by the 4-tuple hash, so a client address stays with one
 * worker (and its flow) while the set is unchanged, and the flows spread over the workers.
 */
#include "addon.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* A UDP socket bound to sa (SO_REUSEPORT: one of a frontend's set); the descriptor, or -errno. */
static int bind_udp(const struct sockaddr_storage *sa, socklen_t len, int reuseport) {
  int fd = socket(sa->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (sa->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if ((reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) || bind(fd, (const struct sockaddr *)sa, len) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

static in_port_t *port_field(struct sockaddr_storage *sa) {
  return sa->ss_family == AF_INET6 ? &((struct sockaddr_in6 *)sa)->sin6_port : &((struct sockaddr_in *)sa)->sin_port;
}

/*
 * Binds the frontend's `k` sockets to sa (port 0: one ephemeral port for all); fds[0..k)
 * on success (sa then holds the bound port), else -errno with none left open. A probe
 * binds first WITHOUT SO_REUSEPORT: it fails with EADDRINUSE on any socket already there,
 * as the single socket always did (no SO_REUSEADDR either: a UDP port is never shared),
 * where a reuseport bind would silently join another reuseport socket of the same user.
 * With one socket the probe is the socket. Otherwise the set binds right after the probe
 * closes; a non-reuseport bind in between still makes ours fail, so the window only admits
 * a reuseport socket of this user racing for that very port, which no check after binding
 * could see either (the kernel does not tell who else is in a reuseport group).
 */
static int bind_set(struct sockaddr_storage *sa, socklen_t len, int k, int *fds) {
  int probe = bind_udp(sa, len, 0);
  if (probe < 0) return probe;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  if (getsockname(probe, (struct sockaddr *)&bound, &blen) < 0) { int err = -errno; close(probe); return err; }
  *port_field(sa) = *port_field(&bound);
  if (k == 1) { fds[0] = probe; return 0; }
  close(probe);
  for (int i = 0; i < k; i++) {
    if ((fds[i] = bind_udp(sa, len, 1)) >= 0) continue;
    int err = fds[i];
    while (i > 0) close(fds[--i]);
    return err;
  }
  return 0;
}

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
  /* maxFlows bounds the frontend's total: each socket's worker holds a share of it, and
   * shares are whole and at least 1, so a bound below the worker count uses fewer sockets. */
  if (!max_flows) max_flows = 1;
  int k = (uint32_t)r->n < max_flows ? r->n : (int)max_flows;
  int fds[MAX_WORKERS];
  int err = bind_set(&sa, len, k, fds);
  if (err < 0) { throw_errno(env, -err, "bind"); return NULL; }
  ucount *count = calloc(1, sizeof *count);
  struct ulistener *us[MAX_WORKERS] = { 0 };
  cmd *qs[MAX_WORKERS] = { 0 };
  int ok = count != NULL;
  if (count) count->lid = lid;
  for (int i = 0; i < k; i++) {
    /* Shares differ by at most one and sum to max_flows. */
    uint32_t share = max_flows / (uint32_t)k + ((uint32_t)i < max_flows % (uint32_t)k);
    qs[i] = calloc(1, sizeof(cmd));
    us[i] = ok && qs[i] ? udp_new_listener(fds[i], count, idle > 0 ? (int64_t)idle : 0, share) : NULL;
    if (!us[i]) ok = 0;
  }
  if (!ok) {
    for (int i = 0; i < k; i++) { if (us[i]) udp_free_listener(us[i]); else close(fds[i]); free(qs[i]); }
    free(count);
    napi_throw_error(env, "BEACON_RELAY", "out of memory");
    return NULL;
  }
  count->next = r->counts;
  r->counts = count;
  for (int i = 0; i < k; i++) {
    qs[i]->kind = CMD_UDP_LISTEN;
    qs[i]->u = us[i];
    /* Starting at lid spreads single-socket frontends (k == 1) over the workers. */
    submit(r, &r->w[(lid + (uint32_t)i) % (uint32_t)r->n], qs[i]);
  }
  CHECK(napi_create_uint32(env, ntohs(*port_field(&sa)), &out));
  return out;
}

/* Every worker: any may own one of the frontend's sockets (udp_unlisten ignores a stranger's). */
napi_value js_udp_unlisten(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay *r = argc >= 2 ? open_relay(env, argv[0]) : NULL;
  if (!r) return NULL;
  uint32_t lid;
  CHECK(napi_get_value_uint32(env, argv[1], &lid));
  cmd *qs[MAX_WORKERS];
  if (cmds_for_all(r, CMD_UDP_UNLISTEN, qs) < 0) { napi_throw_error(env, "BEACON_RELAY", "out of memory"); return NULL; }
  for (int i = 0; i < r->n; i++) qs[i]->lid = lid;
  submit_all(r, qs);
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
  int64_t vals[6] = { 0, 0, 0, 0, 0, 0 };
  if (c) {
    vals[0] = __atomic_load_n(&c->bytes_in, __ATOMIC_ACQUIRE);
    vals[1] = __atomic_load_n(&c->bytes_out, __ATOMIC_ACQUIRE);
    vals[2] = __atomic_load_n(&c->flows, __ATOMIC_ACQUIRE);
    vals[3] = __atomic_load_n(&c->evictions, __ATOMIC_ACQUIRE);
    vals[4] = __atomic_load_n(&c->dropped, __ATOMIC_ACQUIRE);
    vals[5] = __atomic_load_n(&c->refused, __ATOMIC_ACQUIRE);
  }
  CHECK(napi_create_array_with_length(env, 6, &out));
  for (uint32_t i = 0; i < 6; i++) {
    CHECK(napi_create_double(env, (double)vals[i], &v));
    CHECK(napi_set_element(env, out, i, v));
  }
  return out;
}
