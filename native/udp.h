/*
 * UDP frontends (udp.c: the flow table; udp-io.c: datagrams both ways), shared declarations.
 */
#ifndef BEACON_UDP_H
#define BEACON_UDP_H
#include "relay.h"

/* Datagrams per recvmmsg/sendmmsg: amortises the system call (NGINX reads one at a time).
 * 32 buffers of DGRAM_BUF are 2 MiB of address space per thread, but a small datagram
 * touches one page of its buffer, so they cost RSS only as far as datagrams fill them. */
#define VLEN 32
/* A buffer holds the largest datagram: 65,535 - 8 (UDP header) - 20 (IPv4 header) = 65,507
 * (RFC 768, RFC 791), rounded up to a power of two. */
#define DGRAM_BUF 65536
/* Datagrams held for a flow while JavaScript decides (as udp-frontend.ts); more are dropped, counted. */
#define MAX_PENDING 16
/* Receive buffer of every UDP socket: four maximum datagrams, as udp-frontend.ts asks of Node. */
#define RCVBUF (4 * 65507)
/* Batches per frontend per wake-up before other sockets get a turn (fairness, as BUDGET). */
#define UDP_BUDGET 8
#define NO_TAG UINT32_MAX
/* A client JavaScript refused (source ranges, no healthy backend) is not asked about again
 * for this long (ms): its datagrams are dropped and counted meanwhile. A flood from one
 * refused address then costs JavaScript one decision per second instead of one per
 * datagram, and a backend coming back or a range change reaches it within a second. */
#define REFUSED_MS 1000

typedef struct dgram { struct dgram *next; uint32_t len; char data[]; } dgram;

typedef struct flow {
  uint64_t id;
  struct sockaddr_in6 peer; /* large enough for an IPv4 peer too */
  socklen_t plen;
  int fd;                   /* upstream; -1 while JavaScript decides */
  uint32_t tag;
  int64_t refused_until;    /* JavaScript refused it: drop its datagrams until then (ms; 0: not refused) */
  struct ulistener *u;
  int64_t last_ms;
  int64_t bytes[2];         /* 0: client -> upstream, 1: upstream -> client */
  dgram *pend, **pend_tail;
  uint32_t npend;
  struct flow *hnext;             /* hash chain by peer address */
  struct flow *newer, *older;     /* LRU list, newest at the head */
  struct flow *dnext;             /* ended: freed after the event batch, which may still name it */
  int dead;
} flow;

typedef struct ulistener {
  int fd;
  uint32_t lid;
  int64_t idle_ms;
  uint32_t max_flows;
  flow **buckets;
  size_t nbuckets, nflows;
  flow *newest, *oldest;
  ucount *count;
  struct ulistener *next;
  struct ulistener *dnext;        /* closed: freed after the event batch */
  int dead;
} ulistener;

typedef struct udpbufs {
  char *buf[VLEN];
  struct iovec iov[VLEN];
  struct sockaddr_in6 addr[VLEN];
  struct mmsghdr msg[VLEN];
  struct flow *to[VLEN];          /* per received datagram: the flow to send it on, once it has a socket */
  struct mmsghdr out[VLEN];       /* one flow's share of the batch, for one sendmmsg */
} udpbufs;

void count_add(int64_t *c, int64_t v);
void touch(ulistener *u, flow *f, int64_t now);
void end_flow(worker *w, flow *f, int reason, int report_it);
flow *find(ulistener *u, const struct sockaddr_in6 *a, socklen_t len);
flow *new_flow(worker *w, ulistener *u, const struct sockaddr_in6 *a, socklen_t len, int64_t now);

#endif
