/*
 * UDP frontends in the worker threads. A frontend is one SO_REUSEPORT socket per worker
 * (addon-udp.c), and each socket belongs to its worker with its own flow table and share of
 * the frontend's maxFlows, so no lock is taken per datagram and each table's bound and LRU
 * order are exact; the kernel sends a client address to the same socket every time, so a
 * flow lives in one table. Eviction is per share: a full share evicts its own oldest flow
 * even when another share has room. Datagrams from a client address form a flow; its first datagram is reported to JavaScript (EV_FLOW), which
 * answers with a backend (CMD_UDP_CONNECT, tagged with its backend slot) or a refusal;
 * meanwhile up to MAX_PENDING datagrams wait. Each flow has a connected upstream socket,
 * so replies are told apart by socket and sent back from the frontend address. ICMP port
 * unreachable surfaces as ECONNREFUSED on that socket and ends that flow only (R_REFUSED).
 * Every flow JavaScript connected ends with exactly one EV_FLOW_END carrying its tag.
 */
#include "udp.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

void count_add(int64_t *c, int64_t v) { __atomic_add_fetch(c, v, __ATOMIC_RELEASE); }

ulistener *udp_new_listener(int fd, ucount *count, int64_t idle_ms, uint32_t max_flows) {
  ulistener *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  size_t n = 64;
  while (n < max_flows && n < (1u << 20)) n *= 2; /* about one flow per bucket, at most 1 Mi buckets */
  u->buckets = calloc(n, sizeof *u->buckets);
  if (!u->buckets) { free(u); return NULL; }
  u->nbuckets = n;
  u->fd = fd;
  u->lid = count->lid;
  u->count = count;
  u->idle_ms = idle_ms;
  u->max_flows = max_flows ? max_flows : 1;
  int size = RCVBUF;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return u;
}

void udp_free_listener(ulistener *u) {
  if (u->fd >= 0) close(u->fd);
  free(u->buckets);
  free(u);
}

static size_t hash_peer(const struct sockaddr_in6 *a, socklen_t len, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  const unsigned char *p = (const unsigned char *)a;
  for (socklen_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
  return (size_t)h & (n - 1);
}

static flow **chain_of(ulistener *u, flow *f) { return &u->buckets[hash_peer(&f->peer, f->plen, u->nbuckets)]; }

static void lru_unlink(ulistener *u, flow *f) {
  if (f->newer) f->newer->older = f->older; else u->newest = f->older;
  if (f->older) f->older->newer = f->newer; else u->oldest = f->newer;
  f->newer = f->older = NULL;
}

static void lru_front(ulistener *u, flow *f) {
  f->older = u->newest;
  f->newer = NULL;
  if (u->newest) u->newest->newer = f; else u->oldest = f;
  u->newest = f;
}

void touch(ulistener *u, flow *f, int64_t now) {
  f->last_ms = now;
  if (u->newest == f) return;
  lru_unlink(u, f);
  lru_front(u, f);
}

/* Ends a flow: reported when JavaScript connected it (it holds a backend slot for it). */
void end_flow(worker *w, flow *f, int reason, int report_it) {
  ulistener *u = f->u;
  for (flow **p = chain_of(u, f); *p; p = &(*p)->hnext) if (*p == f) { *p = f->hnext; break; }
  lru_unlink(u, f);
  u->nflows--;
  if (!f->refused_until) count_add(&u->count->flows, -1); /* a refused one left the count at its refusal */
  idmap_del(&w->flow_ids, f->id);
  if (f->fd >= 0) { epoll_ctl(w->ep, EPOLL_CTL_DEL, f->fd, NULL); close(f->fd); }
  f->fd = -1;
  for (dgram *d = f->pend, *next; d; d = next) { next = d->next; free(d); }
  f->pend = NULL;
  if (report_it && f->tag != NO_TAG)
    emit(w, EV_FLOW_END, (double)f->id, (double)f->bytes[0], (double)f->bytes[1], reason, u->lid, f->tag, 0);
  f->dead = 1;
  f->dnext = w->udp_dead_flows;
  w->udp_dead_flows = f;
}

flow *find(ulistener *u, const struct sockaddr_in6 *a, socklen_t len) {
  for (flow *f = u->buckets[hash_peer(a, len, u->nbuckets)]; f; f = f->hnext)
    if (f->plen == len && memcmp(&f->peer, a, len) == 0) return f;
  return NULL;
}

/* A new client: the oldest flow makes room when the table is full; JavaScript hears of it. */
flow *new_flow(worker *w, ulistener *u, const struct sockaddr_in6 *a, socklen_t len, int64_t now) {
  while (u->nflows >= u->max_flows && u->oldest) {
    count_add(&u->count->evictions, 1);
    end_flow(w, u->oldest, R_EVICTED, 1);
  }
  flow *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->id = new_id(w);
  if (idmap_put(&w->flow_ids, f->id, f) < 0) { free(f); return NULL; }
  memcpy(&f->peer, a, len);
  f->plen = len;
  f->fd = -1;
  f->tag = NO_TAG;
  f->u = u;
  f->pend_tail = &f->pend;
  flow **chain = chain_of(u, f);
  f->hnext = *chain;
  *chain = f;
  lru_front(u, f);
  f->last_ms = now;
  u->nflows++;
  count_add(&u->count->flows, 1);
  emit_peer(w, EV_FLOW, (double)f->id, u->lid, (const struct sockaddr *)a, 0);
  return f;
}

/* Frees what ended during the event batch. */
void udp_reap(worker *w) {
  while (w->udp_dead_flows) {
    flow *f = w->udp_dead_flows;
    w->udp_dead_flows = f->dnext;
    free(f);
  }
  while (w->udp_dead_listeners) {
    ulistener *u = w->udp_dead_listeners;
    w->udp_dead_listeners = u->dnext;
    udp_free_listener(u);
  }
}

void udp_listen(worker *w, ulistener *u, int64_t now) {
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)u | TAG_UDP_FRONT };
  epoll_ctl(w->ep, EPOLL_CTL_ADD, u->fd, &ev);
  u->next = w->udp;
  w->udp = u;
  watch_timeout(w, u->idle_ms, now);
}

static void close_listener(worker *w, ulistener *u, int report_it) {
  while (u->oldest) end_flow(w, u->oldest, R_CUT, report_it);
  epoll_ctl(w->ep, EPOLL_CTL_DEL, u->fd, NULL);
  close(u->fd);
  u->fd = -1;
  u->dead = 1;
  u->dnext = w->udp_dead_listeners;
  w->udp_dead_listeners = u;
}

/* The frontend closes: its socket, and every flow (each reported as cut). */
void udp_unlisten(worker *w, uint32_t lid) {
  for (ulistener **p = &w->udp; *p; p = &(*p)->next) {
    if ((*p)->lid != lid) continue;
    ulistener *u = *p;
    *p = u->next;
    close_listener(w, u, 1);
    return;
  }
}

/* Flows of the listener to the backend slot `tag` (or all): their backend left. */
void udp_cut(worker *w, uint32_t lid, uint32_t tag) {
  for (ulistener *u = w->udp; u; u = u->next) {
    if (u->lid != lid) continue;
    for (flow *f = u->oldest, *newer; f; f = newer) {
      newer = f->newer;
      if (tag == REFUSED_TAGS ? f->refused_until != 0 : f->fd >= 0 && (tag == ALL_TAGS || f->tag == tag)) end_flow(w, f, R_CUT, 1);
    }
  }
}

/* Ends idle flows (oldest first: the LRU order is the idle order). */
void udp_scan(worker *w, int64_t now) {
  for (ulistener *u = w->udp; u; u = u->next) {
    if (u->idle_ms <= 0) continue;
    while (u->oldest && now - u->oldest->last_ms >= u->idle_ms) end_flow(w, u->oldest, R_IDLE, 1);
  }
}

void udp_shut_down(worker *w) {
  while (w->udp) {
    ulistener *u = w->udp;
    w->udp = u->next;
    close_listener(w, u, 0);
  }
  udp_reap(w);
  if (w->ub) {
    for (int i = 0; i < VLEN; i++) free(w->ub->buf[i]);
    free(w->ub);
    w->ub = NULL;
  }
  free(w->flow_ids.keys);
  free(w->flow_ids.vals);
  w->flow_ids = (idmap){ 0 };
}
