/*
 * The epoll threads. Each worker owns its connections: it accepts them (listeners are in
 * every worker's set with EPOLLEXCLUSIVE, so the kernel wakes one), reports them to
 * JavaScript, connects where JavaScript says, relays (pump.c), enforces connect and idle
 * timeouts, and reports ends. Commands from the JavaScript thread arrive through a locked
 * queue and an eventfd.
 */
#include "relay.h"
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Tags in epoll's data (relay.h): conn pointers (16-byte aligned) carry the side in bit 0. */

int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_ms(void) { return now_us() / 1000; }

uint64_t new_id(worker *w) {
  uint64_t serial = __atomic_add_fetch(&w->next_serial, 1, __ATOMIC_RELAXED);
  return (serial << 4) | (uint64_t)w->index;
}

/* ---- commands ---- */

void free_cmd(cmd *q) {
  free(q->header);
  free(q->route);
  free(q);
}

/* Appends the commands head..tail (linked by next) to w's queue; one wake-up for all. */
void post_list(worker *w, cmd *head, cmd *tail) {
  pthread_mutex_lock(&w->mu);
  int wake = w->head == NULL; /* the thread drains the whole queue per wake-up */
  if (w->tail) w->tail->next = head; else w->head = head;
  w->tail = tail;
  pthread_mutex_unlock(&w->mu);
  if (wake) { uint64_t one = 1; ssize_t r = write(w->efd, &one, sizeof one); (void)r; }
}

void post(worker *w, cmd *q) {
  q->next = NULL;
  post_list(w, q, q);
}

void watch_timeout(worker *w, int64_t ms, int64_t now) {
  if (ms <= 0) return;
  int64_t scan = ms / 4;
  if (scan < SCAN_MIN_MS) scan = SCAN_MIN_MS;
  if (scan > SCAN_MAX_MS) scan = SCAN_MAX_MS;
  if (scan < w->scan_ms) w->scan_ms = scan;
  if (w->next_scan > now + scan) w->next_scan = now + scan;
}

static void link_live(worker *w, conn *c) {
  if (c->linked) return;
  c->prev = NULL;
  c->next = w->live;
  if (w->live) w->live->prev = c;
  w->live = c;
  c->linked = 1;
}

static void unlink_live(worker *w, conn *c) {
  if (!c->linked) return;
  if (c->prev) c->prev->next = c->next; else w->live = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->linked = 0;
}

static int watch(worker *w, conn *c, int side) {
  if (c->reg[side]) return 0;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)side };
  if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd[side], &ev) < 0) return -1;
  c->reg[side] = 1;
  return 0;
}

static void start_relaying(worker *w, conn *c, int64_t now) {
  c->state = S_RELAYING;
  c->last_ms = now;
  for (int i = 0; i < 2; i++) { c->readable[i] = 1; c->writable[i] = 1; }
  link_live(w, c);
  watch_timeout(w, c->idle_ms, now);
  if (watch(w, c, 0) < 0 || watch(w, c, 1) < 0) { kill_conn(w, c, R_RESET, 1); return; }
  service(w, c, now);
}

/* The upstream could not be reached: back to waiting for JavaScript's next choice. */
static void connect_failed(worker *w, conn *c, int err) {
  if (c->reg[1]) epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd[1], NULL);
  c->reg[1] = 0;
  close(c->fd[1]);
  c->fd[1] = -1;
  free(c->pend[0].buf);
  c->pend[0] = (pending){ 0 };
  c->header = 0;
  c->state = S_WAITING;
  unlink_live(w, c);
  emit(w, EV_CONNECT_FAILED, (double)c->id, err, c->lid, c->tag, 0, 0, 0);
}

static void connected(worker *w, conn *c, int64_t now) {
  emit(w, EV_CONNECTED, (double)c->id, (double)(now_us() - c->started_us) / 1000.0, c->lid, c->tag, 0, 0, 0);
  start_relaying(w, c, now);
}

/* TCP_NODELAY and keep-alive probes after `seconds` of silence. Set once on a listener,
 * Linux copies them to every connection it accepts (tcp_create_openreq_child), which saves
 * three system calls per client. */
void set_keepalive(int fd, int seconds) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (seconds > 0) {
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &seconds, sizeof seconds);
  }
}

/* Connects waiting client c to `to`; *header (hlen bytes) goes ahead of the client's and
 * the conn takes it over. The outcome is reported (connected or connect failed). */
static void start_connect(worker *w, conn *c, const struct sockaddr_storage *to, socklen_t tolen, uint32_t tag,
                          int64_t timeout_ms, int64_t idle_ms, int keepalive_s, char **header, uint32_t hlen, int64_t now) {
  c->tag = tag;
  int s = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) { emit(w, EV_CONNECT_FAILED, (double)c->id, errno, c->lid, c->tag, 0, 0, 0); return; }
  set_keepalive(s, keepalive_s);
  c->fd[1] = s;
  c->state = S_CONNECTING;
  c->started_us = now_us();
  c->idle_ms = idle_ms;
  c->deadline_ms = timeout_ms > 0 ? now + timeout_ms : INT64_MAX;
  if (hlen) {
    c->pend[0] = (pending){ *header, 0, hlen };
    c->header = hlen;
    *header = NULL;
  }
  link_live(w, c);
  watch_timeout(w, timeout_ms, now);
  if (connect(s, (const struct sockaddr *)to, tolen) == 0) { connected(w, c, now); return; }
  if (errno != EINPROGRESS) { connect_failed(w, c, errno); return; }
  if (watch(w, c, 1) < 0) connect_failed(w, c, errno);
}

static void do_connect(worker *w, cmd *q, int64_t now) {
  conn *c = idmap_get(&w->ids, q->id);
  if (!c || c->state != S_WAITING) return;
  start_connect(w, c, &q->to, q->tolen, q->tag, q->timeout_ms, q->idle_ms, q->keepalive_s, &q->header, q->hlen, now);
}

static void pause_accepting(worker *w, int64_t now) {
  for (int i = 0; i < w->nlisteners; i++) epoll_ctl(w->ep, EPOLL_CTL_DEL, w->listeners[i]->fd, NULL);
  w->accept_paused_until = now + ACCEPT_PAUSE_MS;
}

static void arm_listener(worker *w, listener *l) {
  struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = (uint64_t)(uintptr_t)l | TAG_LISTENER };
  epoll_ctl(w->ep, EPOLL_CTL_ADD, l->fd, &ev);
}

void release_listener(listener *l) {
  if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    close(l->fd);
    gate_release(l->gate);
    free(l);
  }
}

static void drop_listener(worker *w, listener *l) {
  for (int i = 0; i < w->nlisteners; i++) {
    if (w->listeners[i] != l) continue;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, l->fd, NULL);
    free(w->routes[i]);
    w->nlisteners--;
    w->listeners[i] = w->listeners[w->nlisteners];
    w->routes[i] = w->routes[w->nlisteners];
    w->routes[w->nlisteners] = NULL;
    release_listener(l);
    return;
  }
}

static void accept_from(worker *w, listener *l, int64_t now) {
  const route *rt = route_for(w, l);
  for (int budget = ACCEPT_BUDGET; budget > 0; budget--) {
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    int fd = accept4(l->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting(w, now);
      return;
    }
    conn *c = calloc(1, sizeof(conn));
    if (!c) { close(fd); continue; }
    c->fd[0] = fd;
    c->fd[1] = -1;
    c->id = new_id(w);
    c->lid = (uint32_t)l->id;
    c->state = S_WAITING;
    c->gate = l->gate;
    int open = gate_enter(l->gate);
    if (rt && open > rt->max_open) { /* full: refused here, counted by JavaScript */
      close(fd);
      free_conn(c);
      emit(w, EV_REFUSED, 0, l->id, 0, 0, 0, 0, 0);
      continue;
    }
    if (idmap_put(&w->ids, c->id, c) < 0) { close(fd); free_conn(c); continue; }
    const rbackend *b = route_pick(l, rt);
    /* The report goes first: JavaScript hears of the client before its connect's outcome. */
    emit_peer(w, EV_ACCEPTED, (double)c->id, l->id, (const struct sockaddr *)&sa, b ? b->tag + 1 : 0);
    if (b) start_connect(w, c, &b->to, b->tolen, b->tag, rt->timeout_ms, rt->idle_ms, rt->keepalive_s, NULL, 0, now);
  }
}

/* Cuts the listener's relayed and connecting connections with this tag (or all of them). */
static void cut_tag(worker *w, uint32_t lid, uint32_t tag) {
  for (conn *c = w->live, *next; c; c = next) {
    next = c->next;
    if (c->lid != lid || (tag != ALL_TAGS && c->tag != tag)) continue;
    if (c->state == S_RELAYING) kill_conn(w, c, R_CUT, 1);
    else if (c->state == S_CONNECTING) connect_failed(w, c, ECANCELED);
  }
}

static void take_commands(worker *w, int64_t now) {
  uint64_t v;
  while (read(w->efd, &v, sizeof v) > 0) {}
  pthread_mutex_lock(&w->mu);
  cmd *q = w->head;
  w->head = w->tail = NULL;
  pthread_mutex_unlock(&w->mu);
  for (cmd *next; q; q = next) {
    next = q->next;
    conn *c;
    switch (q->kind) {
    case CMD_STOP: w->stopping = 1; break;
    case CMD_ADD:
      c = q->c;
      if (idmap_put(&w->ids, c->id, c) < 0) { close(c->fd[0]); close(c->fd[1]); free(c->pend[0].buf); free_conn(c); break; }
      start_relaying(w, c, now);
      break;
    case CMD_CUT:
      /* Relaying: ends with a report. Connecting: the attempt fails (ECANCELED) and
       * JavaScript, which is closing, rejects it. Waiting: nobody asked for it, close. */
      c = idmap_get(&w->ids, q->id);
      if (!c) break;
      if (c->state == S_RELAYING) kill_conn(w, c, R_CUT, 1);
      else if (c->state == S_CONNECTING) connect_failed(w, c, ECANCELED);
      else { idmap_del(&w->ids, c->id); close(c->fd[0]); free_conn(c); }
      break;
    case CMD_CONNECT: do_connect(w, q, now); break;
    case CMD_REJECT:
      c = idmap_get(&w->ids, q->id);
      if (c && c->state == S_WAITING) { idmap_del(&w->ids, c->id); close(c->fd[0]); free_conn(c); }
      break;
    case CMD_LISTEN:
      if (w->nlisteners < (int)(sizeof w->listeners / sizeof w->listeners[0])) {
        w->listeners[w->nlisteners++] = q->l;
        if (!w->accept_paused_until) arm_listener(w, q->l);
      } else release_listener(q->l);
      break;
    case CMD_UNLISTEN: drop_listener(w, q->l); break;
    case CMD_CUT_TAG: cut_tag(w, q->lid, q->tag); udp_cut(w, q->lid, q->tag); break;
    case CMD_UDP_LISTEN: udp_listen(w, q->u, now); q->u = NULL; break;
    case CMD_UDP_UNLISTEN: udp_unlisten(w, q->lid); break;
    case CMD_UDP_CONNECT: udp_connect(w, q, now); break;
    case CMD_UDP_REJECT: udp_reject(w, q->id, now); break;
    case CMD_ROUTES: take_route(w, q->route); q->route = NULL; break;
    }
    free_cmd(q);
  }
}

static void flush(worker *w) {
  w->urgent = 0;
  if (!w->nout) return;
  batch *b = malloc(sizeof(batch) + w->nout * sizeof(report));
  if (b) {
    b->n = w->nout;
    memcpy(b->r, w->out, w->nout * sizeof(report));
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
    free_conn(c);
  }
}

static void scan(worker *w, int64_t now) {
  for (conn *c = w->live, *next; c; c = next) {
    next = c->next;
    if (c->state == S_CONNECTING && now >= c->deadline_ms) connect_failed(w, c, ETIMEDOUT);
    else if (c->state == S_RELAYING && c->idle_ms > 0 && now - c->last_ms >= c->idle_ms) kill_conn(w, c, R_IDLE, 1);
  }
  udp_scan(w, now);
  w->next_scan = now + w->scan_ms;
}

/* Stopping: the owner accounts for what is left; everything closes without reports. */
static void shut_down(worker *w) {
  size_t n = 0;
  conn **all = w->ids.size ? malloc(w->ids.size * sizeof(conn *)) : NULL;
  for (size_t i = 0; all && i < w->ids.cap; i++) if (w->ids.vals[i]) all[n++] = w->ids.vals[i];
  for (size_t i = 0; i < n; i++) kill_conn(w, all[i], R_CUT, 0);
  free(all);
  for (conn *r = w->ready; r; r = r->rnext) r->queued = 0;
  w->ready = NULL;
  reap(w);
  while (w->nlisteners) drop_listener(w, w->listeners[0]);
  free(w->ids.keys);
  free(w->ids.vals);
  w->ids = (idmap){ 0 };
  udp_shut_down(w);
}

void *worker_run(void *arg) {
  worker *w = arg;
  struct epoll_event evs[MAX_EVENTS];
  while (!w->stopping) {
    int64_t now = now_ms();
    int64_t wake = INT64_MAX;
    if ((w->live || w->udp) && w->scan_ms < INT64_MAX) wake = w->next_scan;
    if (w->accept_paused_until && w->accept_paused_until < wake) wake = w->accept_paused_until;
    if (w->nout && w->flush_by < wake) wake = w->flush_by;
    int timeout = w->ready ? 0 : wake == INT64_MAX ? -1 : (int)(wake > now ? wake - now : 0);
    int n = epoll_wait(w->ep, evs, MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR) break;
    now = now_ms();
    for (int i = 0; i < n; i++) {
      uint64_t u = evs[i].data.u64;
      if (u == 0) { take_commands(w, now); continue; }
      if (u & (TAG_UDP_FRONT | TAG_UDP_FLOW)) { udp_event(w, u, now); continue; }
      if (u & TAG_LISTENER) { accept_from(w, (listener *)(uintptr_t)(u & ~(uint64_t)TAG_LISTENER), now); continue; }
      conn *c = (conn *)(uintptr_t)(u & ~(uint64_t)1);
      int side = (int)(u & 1);
      if (c->dead) continue;
      uint32_t e = evs[i].events;
      if (c->state == S_CONNECTING) {
        if (side != 1) continue;
        /* A pending socket error always raises EPOLLERR (tcp_poll), so a clean EPOLLOUT
         * needs no SO_ERROR read: one system call less per connection. */
        int err = 0;
        socklen_t len = sizeof err;
        if ((e & (EPOLLERR | EPOLLHUP)) && getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err) connect_failed(w, c, err);
        else if (e & (EPOLLOUT | EPOLLIN)) connected(w, c, now);
        continue;
      }
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
      service(w, r, now);
      r = next;
    }
    if (w->accept_paused_until && now >= w->accept_paused_until) {
      w->accept_paused_until = 0;
      for (int i = 0; i < w->nlisteners; i++) arm_listener(w, w->listeners[i]);
    }
    if ((w->live || w->udp) && now >= w->next_scan) scan(w, now);
    reap(w);
    udp_reap(w);
    if (w->urgent || w->nout >= REPORT_BATCH || (w->nout && now >= w->flush_by)) flush(w);
  }
  flush(w); /* what waited for REPORT_DELAY_MS still reaches JavaScript */
  shut_down(w);
  return NULL;
}
