/*
 * The N-API surface's shared helpers (addon.c) for its parts: addon.c (TCP, the relay)
 * and addon-udp.c (UDP frontends).
 */
#ifndef BEACON_ADDON_H
#define BEACON_ADDON_H
#define NAPI_VERSION 8
#include "relay.h"

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "BEACON_RELAY", #call " failed"); return NULL; } } while (0)

/*
 * Where reports are copied for JavaScript: one Float64Array kept across batches (grown when
 * a batch does not fit), so a batch allocates nothing on the JavaScript side. Owned by the
 * threadsafe function and freed after its last call.
 */
typedef struct sink {
  relay *r;        /* NULL once the relay stopped */
  napi_ref array;
  double *data;
  size_t cap; /* doubles */
} sink;

void free_sink(napi_env env, void *data, void *hint);
/* On the JavaScript thread: onReports(array, length) with the batch in array[0..length). */
void call_js(napi_env env, napi_value fn, void *ctx, void *data);

relay *open_relay(napi_env env, napi_value v);
/* Posts q to w, or stages it while a report batch is being answered (uncork posts them). */
void submit(relay *r, worker *w, cmd *q);
void uncork(relay *r);
/* One command of `kind` per worker in qs[0..r->n), all or none: -1 (out of memory, none made). */
int cmds_for_all(relay *r, int kind, cmd *qs[MAX_WORKERS]);
/* qs[i] to worker i (after cmds_for_all and filling them in). */
void submit_all(relay *r, cmd *qs[MAX_WORKERS]);
void free_all(relay *r, cmd *qs[MAX_WORKERS]);
void throw_errno(napi_env env, int err, const char *what);
/* "ip", port -> sockaddr; 0 on success. */
int to_sockaddr(napi_env env, napi_value ip, uint32_t port, struct sockaddr_storage *out, socklen_t *len);
cmd *id_cmd(napi_env env, napi_value vr, napi_value vid, int kind, relay **rp);
void post_to_owner(relay *r, cmd *q);
napi_value js_simple(napi_env env, napi_callback_info info, int kind);

napi_value js_listen(napi_env env, napi_callback_info info);
napi_value js_unlisten(napi_env env, napi_callback_info info);
napi_value js_cut_tag(napi_env env, napi_callback_info info);
napi_value js_routes(napi_env env, napi_callback_info info);

napi_value js_udp_listen(napi_env env, napi_callback_info info);
napi_value js_udp_unlisten(napi_env env, napi_callback_info info);
napi_value js_udp_connect(napi_env env, napi_callback_info info);
napi_value js_udp_reject(napi_env env, napi_callback_info info);
napi_value js_udp_counters(napi_env env, napi_callback_info info);

#endif
