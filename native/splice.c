/*
 * The splice path of a relayed direction (pump.c decides when): bytes go from one socket
 * into a kernel pipe and from the pipe to the other socket, never copied through user
 * space. A direction turns bulk after one read fills a whole CHUNK (a stream, not
 * request/response traffic, where the copy is as cheap and needs no pipe); it borrows a
 * pipe from the worker's pool while it has bytes to move and gives it back when its
 * socket runs dry, so an idle connection holds no pipe (no descriptors, no memory).
 * Backpressure is the same as the copy path's: while the pipe holds bytes the other side
 * has not taken, this direction reads nothing more (at most one pipe, 64 KiB, held).
 */
#include "relay.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Bytes asked of one splice, and the pipe's size to hold them: fewer calls per byte than a
 * 64 KiB chunk. Pipe pages are only taken while bytes sit in them. */
#define SPLICE_CHUNK (256 * 1024)

static kpipe *pipe_get(worker *w) {
  kpipe *p = w->pipes;
  if (p) { w->pipes = p->next; w->npooled--; p->next = NULL; return p; }
  if (w->npipes >= MAX_PIPES) return NULL;
  p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0) { free(p); return NULL; } /* EMFILE: copy instead */
  fcntl(p->fd[1], F_SETPIPE_SZ, SPLICE_CHUNK); /* best effort: the default 64 KiB still works */
  w->npipes++;
  return p;
}

static void pipe_put(worker *w, kpipe *p) {
  /* A pipe with bytes left in it belongs to a dead connection: those bytes go nowhere. */
  if (p->held || w->npooled >= PIPE_POOL) {
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
    w->npipes--;
    return;
  }
  p->next = w->pipes;
  w->pipes = p;
  w->npooled++;
}

/*
 * Moves direction d (0: client to upstream) by splice while its budget lasts. Returns 1 when
 * it handled the direction, 0 when pump.c should copy instead (no pipe to be had), -1 on a
 * socket error.
 */
int splice_pump(worker *w, conn *c, int d, int *budget, int *more, int *moved) {
  int from = d, to = 1 - d;
  if (!c->pipe[d]) {
    if (c->eof[d] || !c->readable[from]) return 1; /* nothing to read: no pipe needed */
    c->pipe[d] = pipe_get(w);
    if (!c->pipe[d]) return 0;
  }
  kpipe *p = c->pipe[d];
  for (;;) {
    if (p->held) {
      if (!c->writable[to]) return 1;
      ssize_t k = splice(p->fd[0], NULL, c->fd[to], NULL, p->held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) { c->writable[to] = 0; return 1; }
        if (errno == EINTR) continue;
        return -1;
      }
      p->held -= (uint32_t)k;
      c->bytes[d] += k;
      *moved = 1;
      if (p->held) { c->writable[to] = 0; return 1; } /* send buffer full: EPOLLOUT will say when */
      continue;
    }
    if (c->eof[d] || !c->readable[from]) break;
    if ((*budget)-- == 0) { *more = 1; return 1; }
    ssize_t n = splice(c->fd[from], NULL, p->fd[1], NULL, SPLICE_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) { c->readable[from] = 0; break; }
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) { c->eof[d] = 1; break; }
    *moved = 1;
    p->held = (uint32_t)n;
    /* Unlike recv in pump.c, a short splice does not mean the queue is empty: the pipe has
     * 16 buffer slots (pipe(7)) and each socket buffer fills one, however small. So the
     * direction stays readable until splice itself says EAGAIN; under edge-triggered
     * epoll, guessing "empty" wrongly would leave bytes behind with no edge to come. */
  }
  /* Dry (or at its end) with the pipe empty: the pipe goes back to the pool. */
  c->pipe[d] = NULL;
  pipe_put(w, p);
  return 1;
}

/* A connection ends: its pipes go back (or, holding bytes, are closed). */
void splice_release(worker *w, conn *c) {
  for (int d = 0; d < 2; d++) {
    if (c->pipe[d]) pipe_put(w, c->pipe[d]);
    c->pipe[d] = NULL;
  }
}

/* The worker stops: its pooled pipes are closed. */
void splice_close_pool(worker *w) {
  while (w->pipes) {
    kpipe *p = w->pipes;
    w->pipes = p->next;
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
  }
  w->npooled = w->npipes = 0;
}
