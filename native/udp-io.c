/*
 * UDP datagrams both ways, in batches: recvmmsg from the frontend socket, one sendmmsg per
 * flow towards its backend; recvmmsg from a flow's socket and sendmmsg back to its client
 * from the frontend socket. JavaScript's decisions arrive as udp_connect/udp_reject.
 */
#include "udp.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static int to_upstream(worker *w, flow *f, const char *data, uint32_t len) {
  if (send(f->fd, data, len, MSG_DONTWAIT) >= 0) return 0;
  if (errno == ECONNREFUSED) { end_flow(w, f, R_REFUSED, 1); return -1; }
  return 0; /* EAGAIN and the like: UDP may drop */
}

/* A datagram from a client: returns its flow when it is to be sent upstream now (the
 * caller batches the sends per flow), NULL when it waits for JavaScript or was dropped. */
static flow *from_client(worker *w, ulistener *u, const struct sockaddr_in6 *a, socklen_t alen, const char *data, uint32_t len, int64_t now) {
  flow *f = find(u, a, alen);
  if (f && f->refused_until) {
    /* Not touched: a refused entry stays the oldest, first to go when the table is full. */
    if (now < f->refused_until) { count_add(&u->count->refused, 1); return NULL; }
    end_flow(w, f, R_CUT, 0); /* its time is up: JavaScript decides again */
    f = NULL;
  }
  if (f && u->idle_ms > 0 && now - f->last_ms >= u->idle_ms) { end_flow(w, f, R_IDLE, 1); f = NULL; }
  if (!f && !(f = new_flow(w, u, a, alen, now))) return NULL;
  touch(u, f, now);
  if (f->fd >= 0) {
    f->bytes[0] += len;
    count_add(&u->count->bytes_in, len);
    return f;
  }
  if (f->npend >= MAX_PENDING) { count_add(&u->count->dropped, 1); return NULL; }
  dgram *d = malloc(sizeof *d + len);
  if (!d) return NULL;
  d->next = NULL;
  d->len = len;
  memcpy(d->data, data, len);
  *f->pend_tail = d;
  f->pend_tail = &d->next;
  f->npend++;
  return NULL;
}

/* Sends the batch's datagrams upstream: one sendmmsg per flow for all of its share. */
static void send_batch(worker *w, udpbufs *b, int n) {
  for (int i = 0; i < n; i++) {
    flow *f = b->to[i];
    if (!f) continue;
    unsigned k = 0;
    for (int j = i; j < n; j++) {
      if (b->to[j] != f) continue;
      b->iov[j].iov_len = b->msg[j].msg_len;
      b->out[k++].msg_hdr = (struct msghdr){ .msg_iov = &b->iov[j], .msg_iovlen = 1 };
      b->to[j] = NULL;
    }
    if (f->dead) continue; /* evicted by a later datagram of the batch */
    for (unsigned sent = 0; sent < k;) {
      int r = sendmmsg(f->fd, b->out + sent, k - sent, MSG_DONTWAIT);
      if (r > 0) { sent += (unsigned)r; continue; }
      if (errno == ECONNREFUSED) end_flow(w, f, R_REFUSED, 1);
      break; /* EAGAIN and the like: UDP may drop */
    }
  }
}

static udpbufs *bufs(worker *w) {
  if (w->ub) return w->ub;
  udpbufs *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  for (int i = 0; i < VLEN; i++) {
    if (!(b->buf[i] = malloc(DGRAM_BUF))) { for (int j = 0; j < i; j++) free(b->buf[j]); free(b); return NULL; }
    b->iov[i] = (struct iovec){ b->buf[i], DGRAM_BUF };
  }
  return w->ub = b;
}

/* Refills the message headers for a recvmmsg; `names`: also receive the senders' addresses. */
static void arm(udpbufs *b, int names) {
  for (int i = 0; i < VLEN; i++) {
    b->iov[i].iov_len = DGRAM_BUF;
    b->msg[i].msg_hdr = (struct msghdr){ .msg_name = names ? &b->addr[i] : NULL, .msg_namelen = names ? sizeof b->addr[i] : 0, .msg_iov = &b->iov[i], .msg_iovlen = 1 };
  }
}

static void front_readable(worker *w, ulistener *u, int64_t now) {
  udpbufs *b = bufs(w);
  if (!b) return;
  for (int round = 0; round < UDP_BUDGET; round++) {
    arm(b, 1);
    int n = recvmmsg(u->fd, b->msg, VLEN, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) b->to[i] = from_client(w, u, &b->addr[i], b->msg[i].msg_hdr.msg_namelen, b->buf[i], b->msg[i].msg_len, now);
    send_batch(w, b, n);
    if (n < VLEN) return;
  }
}

/* Replies from a flow's backend go back to its client from the frontend socket, a batch per call. */
static void flow_readable(worker *w, flow *f, int64_t now) {
  udpbufs *b = bufs(w);
  if (!b) return;
  ulistener *u = f->u;
  for (int round = 0; round < UDP_BUDGET; round++) {
    arm(b, 0);
    int n = recvmmsg(f->fd, b->msg, VLEN, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == ECONNREFUSED) end_flow(w, f, R_REFUSED, 1);
      return;
    }
    if (n == 0) return;
    int64_t bytes = 0;
    for (int i = 0; i < n; i++) {
      b->iov[i].iov_len = b->msg[i].msg_len;
      bytes += b->msg[i].msg_len;
      b->msg[i].msg_hdr.msg_name = &f->peer;
      b->msg[i].msg_hdr.msg_namelen = f->plen;
    }
    f->bytes[1] += bytes;
    count_add(&u->count->bytes_out, bytes);
    touch(u, f, now); /* a reply is activity too */
    for (int sent = 0; sent < n;) {
      int k = sendmmsg(u->fd, b->msg + sent, (unsigned)(n - sent), MSG_DONTWAIT);
      if (k <= 0) break; /* the client's socket is full or gone: UDP drops */
      sent += k;
    }
    if (n < VLEN) return;
  }
}

void udp_event(worker *w, uint64_t tag, int64_t now) {
  if (tag & TAG_UDP_FRONT) {
    ulistener *u = (ulistener *)(uintptr_t)(tag & ~(uint64_t)TAG_UDP_FRONT);
    if (!u->dead) front_readable(w, u, now);
  } else {
    flow *f = (flow *)(uintptr_t)(tag & ~(uint64_t)TAG_UDP_FLOW);
    if (!f->dead) flow_readable(w, f, now);
  }
}

void udp_connect(worker *w, cmd *q, int64_t now) {
  flow *f = idmap_get(&w->flow_ids, q->id);
  if (!f || f->fd >= 0) {
    /* Gone meanwhile (evicted, its frontend closed): the slot JavaScript holds comes back. */
    emit(w, EV_FLOW_END, (double)q->id, 0, 0, R_CUT, q->lid, q->tag, 0);
    return;
  }
  f->tag = q->tag;
  int s = socket(q->to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    int ours = errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
    end_flow(w, f, ours ? R_NO_RESOURCES : R_RESET, 1);
    return;
  }
  int size = RCVBUF;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)f | TAG_UDP_FLOW };
  if (connect(s, (struct sockaddr *)&q->to, q->tolen) < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, s, &ev) < 0) {
    close(s);
    end_flow(w, f, R_RESET, 1);
    return;
  }
  f->fd = s;
  touch(f->u, f, now);
  dgram *d = f->pend;
  f->pend = NULL;
  f->pend_tail = &f->pend;
  f->npend = 0;
  int alive = 1;
  while (d) {
    dgram *next = d->next;
    if (alive) {
      f->bytes[0] += d->len;
      count_add(&f->u->count->bytes_in, d->len);
      alive = to_upstream(w, f, d->data, d->len) == 0;
    }
    free(d);
    d = next;
  }
}

/* JavaScript refused the flow (source ranges, no backend): forgotten, nothing reported. */
/* JavaScript refused the flow: what waited is dropped, and the entry stays REFUSED_MS so
 * the client's next datagrams are dropped here without asking again. */
void udp_reject(worker *w, uint64_t id, int64_t now) {
  flow *f = idmap_get(&w->flow_ids, id);
  if (!f || f->fd >= 0 || f->refused_until) return;
  for (dgram *d = f->pend, *next; d; d = next) { next = d->next; free(d); }
  f->pend = NULL;
  f->pend_tail = &f->pend;
  f->npend = 0;
  f->refused_until = now + REFUSED_MS;
  count_add(&f->u->count->flows, -1); /* a table entry still, but no flow */
}
