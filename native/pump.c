/*
 * Moving bytes for one relayed connection. Edge-triggered: `readable` and `writable`
 * remember what epoll said until a call returns EAGAIN. Backpressure: when the other side
 * does not take a whole read, the rest waits in `pend` and this direction reads nothing
 * more until it has drained (at most one CHUNK held per direction). A bulk direction moves
 * by splice instead (splice.c), with the same rules.
 */
#include "relay.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

void emit(worker *w, double kind, double id, double a, double b, double c, double d, double e, double f) {
  if (w->nout == w->capout) {
    size_t cap = w->capout ? w->capout * 2 : 64;
    report *grown = realloc(w->out, cap * sizeof(report));
    if (!grown) return; /* out of memory: the report is lost; JavaScript's bound waits cover it */
    w->out = grown;
    w->capout = cap;
  }
  if (w->nout == 0) w->flush_by = now_ms() + REPORT_DELAY_MS;
  w->out[w->nout++] = (report){ { kind, id, a, b, c, d, e, f } };
  /* An accept waits for JavaScript's connect() unless its route connects it (b: the port
   * word, >= 131072 when picked; emit_peer). */
  if (kind == EV_CONNECT_FAILED || kind == EV_FLOW || (kind == EV_ACCEPTED && b < 131072.0)) w->urgent = 1;
}

/*
 * A report naming a peer: [kind, id, lid, port, w0, w1, w2, w3], the address as four
 * 32-bit words and port + 65536 for IPv6 (native-relay.ts decodes it). The same for an
 * accepted TCP client and a new UDP flow.
 */
void emit_peer(worker *w, double kind, double id, double lid, const struct sockaddr *peer, uint32_t picked) {
  double words[4] = { 0, 0, 0, 0 }, port;
  if (peer->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
    for (int i = 0; i < 4; i++) {
      uint32_t word;
      memcpy(&word, a->sin6_addr.s6_addr + 4 * i, 4);
      words[i] = ntohl(word);
    }
    port = ntohs(a->sin6_port) + 65536.0; /* + 65536: the address is IPv6 */
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
    words[0] = ntohl(a->sin_addr.s_addr);
    port = ntohs(a->sin_port);
  }
  /* The port word: port (16 bits), + 65536 for IPv6, + 131072 x picked (33 bits more, well
   * inside a double's 53). */
  emit(w, kind, id, lid, port + 131072.0 * picked, words[0], words[1], words[2], words[3]);
}

/* Ends a connection: sockets closed (unread data makes the kernel reset, as a cut should). */
void kill_conn(worker *w, conn *c, int reason, int report_it) {
  if (c->dead) return;
  c->dead = 1;
  if (c->linked) {
    if (c->prev) c->prev->next = c->next; else w->live = c->next;
    if (c->next) c->next->prev = c->prev;
    c->linked = 0;
  }
  idmap_del(&w->ids, c->id);
  for (int i = 0; i < 2; i++) {
    if (c->fd[i] >= 0) {
      epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd[i], NULL);
      close(c->fd[i]);
      c->fd[i] = -1;
    }
    free(c->pend[i].buf);
    c->pend[i].buf = NULL;
  }
  splice_release(w, c);
  if (report_it) {
    int64_t in = c->bytes[0] - c->header;
    emit(w, EV_END, (double)c->id, (double)(in < 0 ? 0 : in), (double)c->bytes[1], reason, c->lid, c->tag, 0);
  }
  c->dnext = w->dead;
  w->dead = c;
}

/* Moves what it can in direction d (0: client to upstream). -1: a socket error. */
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
    if (c->bulk[d] && w->relay->splice) {
      int r = splice_pump(w, c, d, &budget, more, moved);
      if (r < 0) return -1;
      if (r > 0) break;
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
    else if (n == CHUNK) c->bulk[d] = 1; /* a stream: splice.c takes it from the next read */
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
      p->buf = malloc((size_t)(n - k));
      if (!p->buf) return -1;
      memcpy(p->buf, w->buf + k, (size_t)(n - k));
      p->off = 0;
      p->len = (uint32_t)(n - k);
      c->writable[to] = 0;
    }
  }
  if (c->eof[d] && !p->len && !(c->pipe[d] && c->pipe[d]->held) && !c->shut[d]) {
    /* Half-close crosses the relay. When the other direction is shut already, service()
     * closes both sockets next, and close() sends the same FIN: one system call less per
     * connection (HAProxy skips it the same way). */
    if (!c->shut[1 - d]) shutdown(c->fd[to], SHUT_WR);
    c->shut[d] = 1;
  }
  return 0;
}

void service(worker *w, conn *c, int64_t now) {
  if (c->dead || c->state != S_RELAYING) return;
  int more = 0, moved = 0;
  for (int d = 0; d < 2; d++) {
    if (pump(w, c, d, &more, &moved) < 0) { kill_conn(w, c, R_RESET, 1); return; }
  }
  if (c->shut[0] && c->shut[1]) { kill_conn(w, c, R_DONE, 1); return; }
  if (moved) c->last_ms = now;
  if (more && !c->queued) { c->queued = 1; c->rnext = w->ready; w->ready = c; }
}
