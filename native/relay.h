/*
 * Beacon's native relay, shared declarations. Layout:
 *   pump.c    moving bytes for one connection (edge-triggered, backpressure, half-close)
 *   worker.c  the epoll threads: commands, accept, connect, timeouts, reports
 *   route.c   a listener's standing backend list: the threads pick and connect at accept
 *   udp.c     UDP frontends: the flow table (udp-io.c: datagrams both ways)
 *   addon.c   the N-API surface JavaScript calls (addon-listen.c, addon-udp.c: its parts;
 *             sink.c: reports delivered to JavaScript)
 *   idmap.c   connection and flow ids to their structs
 * JavaScript decides (which client may connect, which backend, what header); these threads
 * do the I/O. Where its answer is the same for every client (round-robin over the healthy
 * backends, nobody refused), JavaScript hands it over as a route and only hears the outcome. Every conn is owned by exactly one worker thread; other threads only post
 * commands to it.
 */
#ifndef BEACON_RELAY_H
#define BEACON_RELAY_H
#define _GNU_SOURCE
#include <node_api.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

/* One read: Node's stream chunk size too, so a blocked direction holds at most this much. */
#define CHUNK (64 * 1024)
#define MAX_EVENTS 256
/* Reads per direction per wake-up before other connections get a turn (fairness). */
#define BUDGET 16
/* Timeouts are checked a few times per the shortest one, within these bounds (ms). */
#define SCAN_MIN_MS 10
#define SCAN_MAX_MS 1000
/* Accepts per listener per wake-up; the listener is level-triggered, so the rest follow. */
#define ACCEPT_BUDGET 64
/* After EMFILE/ENFILE the listener rests this long instead of spinning on a full table (ms). */
#define ACCEPT_PAUSE_MS 100
/* Reports that need no answer (ends, connects, routed accepts) wait up to this long, or
 * until REPORT_BATCH of them, so JavaScript wakes about once per this period instead of
 * once per event loop turn: each wake-up is a thread switch, and at 15,000 connections per
 * second they cost more CPU than JavaScript's work on the reports. A report that needs an
 * answer (an accept JavaScript decides, a failed connect, a new UDP flow) goes at once,
 * with whatever waits. Counters read by JavaScript lag by at most this (ms). */
#define REPORT_DELAY_MS 2
#define REPORT_BATCH 256
/* Worker index lives in the low 4 bits of every connection id. */
#define MAX_WORKERS 16

/* Reasons a connection ended, reported to JavaScript (native-relay.ts REASONS).
 * R_NO_RESOURCES: a UDP flow's socket could not be made for want of the proxy's own
 * descriptors or memory; it says nothing about the backend (speaker/proxy/connect-errors.ts). */
enum { R_DONE = 0, R_RESET = 1, R_IDLE = 2, R_CUT = 3, R_EVICTED = 4, R_REFUSED = 5, R_NO_RESOURCES = 6 };
/* Reports to JavaScript, 8 doubles each: [kind, id, a, b, c, d, e, f]. Reports about a
 * connection a listener accepted carry its listener id and the tag JavaScript gave its
 * connect, so JavaScript keeps nothing per connection to route them. */
enum { EV_END = 0, EV_ACCEPTED = 1, EV_CONNECTED = 2, EV_CONNECT_FAILED = 3, EV_FLOW = 4, EV_FLOW_END = 5, EV_ROUTES = 6, EV_REFUSED = 7 };
enum { S_WAITING, S_CONNECTING, S_RELAYING };
enum { CMD_ADD, CMD_CUT, CMD_STOP, CMD_CONNECT, CMD_REJECT, CMD_LISTEN, CMD_UNLISTEN, CMD_CUT_TAG,
       CMD_UDP_LISTEN, CMD_UDP_UNLISTEN, CMD_UDP_CONNECT, CMD_UDP_REJECT, CMD_ROUTES };
/* CMD_CUT_TAG with this tag cuts every connection of the listener. */
#define ALL_TAGS UINT32_MAX
/* CMD_CUT_TAG with this tag forgets the listener's refused UDP clients (udp.h REFUSED_MS):
 * a backend became usable, so they are asked about again at their next datagram. */
#define REFUSED_TAGS (UINT32_MAX - 1)

typedef struct pending { char *buf; uint32_t off, len; } pending;

/* A kernel pipe for splice(2): a bulk direction moves socket -> pipe -> socket without the
 * bytes entering user space (HAProxy's `option splice-auto` does the same). `held`: bytes
 * in the pipe not yet sent on. */
typedef struct kpipe { int fd[2]; uint32_t held; struct kpipe *next; } kpipe;
/* Pipes in use per worker at most (2 descriptors each; HAProxy's maxpipes defaults to a
 * quarter of maxconn); past it a bulk direction copies through `buf` as before. A stalled
 * bulk direction holds one pipe's bytes (SPLICE_CHUNK, splice.c), so this also bounds
 * the kernel memory a worker's stalled pipes can pin: 1024 x 256 KiB. */
#define MAX_PIPES 1024
/* Empty pipes a worker keeps for reuse instead of closing them (a pipe2() saved per burst). */
#define PIPE_POOL 64

/* A listener's accepted connections still open (any state), for its route's max_open.
 * Shared by the listener and every connection it accepted, which may outlive it: freed
 * with the last reference (route.c). */
typedef struct gate { int open; int refs; } gate;

typedef struct conn {
  int fd[2];            /* 0: client, 1: upstream (-1 until connected) */
  uint64_t id;
  uint32_t lid;         /* the listener that accepted it (0: handed over by add()) */
  uint32_t tag;         /* JavaScript's tag from connect() (its backend slot) */
  gate *gate;           /* its listener's count (NULL: handed over by add()) */
  int state;
  int64_t bytes[2];     /* 0: client -> upstream, 1: upstream -> client */
  int64_t header;       /* PROXY header bytes queued ahead of the client's, not counted as its */
  pending pend[2];      /* read but not yet accepted by the other side, per direction */
  kpipe *pipe[2];       /* per direction while it splices; NULL when idle or copying */
  uint8_t bulk[2];      /* a read filled a whole CHUNK once: this direction splices from now on */
  uint8_t readable[2], writable[2], rdhup[2], eof[2], shut[2];
  uint8_t reg[2];       /* descriptor is in the worker's epoll set */
  uint8_t dead, queued, linked;
  int64_t last_ms, idle_ms;
  int64_t deadline_ms;  /* connecting: give up at this time */
  int64_t started_us;   /* connecting: when connect() was called */
  struct conn *prev, *next;  /* live list (relaying and connecting) */
  struct conn *rnext;        /* ready list: budget ran out, more to read */
  struct conn *dnext;        /* dead list: freed after the event batch */
} conn;

typedef struct listener {
  int fd;
  double id;
  int refs;             /* workers still holding it in their epoll set */
  gate *gate;
  uint32_t rr;          /* round-robin cursor over its route, shared by the workers (atomic) */
  struct listener *next; /* the relay's list (JavaScript thread only) */
} listener;

/* A UDP frontend's counters: written by the workers of its sockets, read by JavaScript at any time (atomics).
 * Owned by the relay (freed at close), so a read after the frontend closed is still safe. */
typedef struct ucount {
  uint32_t lid;
  int64_t bytes_in, bytes_out, flows, evictions, dropped, refused;
  struct ucount *next;
} ucount;

struct ulistener;

/* A backend of a route: where to connect and the tag JavaScript gave it (its slot). */
typedef struct rbackend { struct sockaddr_storage to; socklen_t tolen; uint32_t tag; } rbackend;

/* A listener's standing answer for its new clients (route.c): connect each to the next of
 * `b` in turn, with these timeouts; a client over max_open open connections is closed.
 * Each worker holds its own copy; `gen` orders the versions JavaScript sent. */
typedef struct route {
  uint32_t lid, gen, n;
  int64_t timeout_ms, idle_ms;
  int keepalive_s, max_open;
  rbackend b[];
} route;

typedef struct cmd {
  int kind;
  conn *c;
  struct ulistener *u;
  uint64_t id;
  listener *l;
  uint32_t lid, tag;
  struct sockaddr_storage to;
  socklen_t tolen;
  int64_t timeout_ms, idle_ms;
  int keepalive_s;
  char *header;
  uint32_t hlen;
  route *route;
  struct cmd *next;
} cmd;

typedef struct report { double v[8]; } report;
typedef struct batch { size_t n; report r[]; } batch;

/* id -> conn (or UDP flow), open addressing with backward-shift deletion; worker thread only. */
typedef struct idmap { uint64_t *keys; void **vals; size_t cap, size; } idmap;

struct relay;
typedef struct worker {
  struct relay *relay;
  int index;
  pthread_t thread;
  int started;
  int ep, efd;
  pthread_mutex_t mu;
  cmd *head, *tail;
  cmd *staged, *staged_tail; /* JavaScript thread only: commands waiting for uncork() */
  int stopping;
  conn *live, *ready, *dead;
  idmap ids;
  idmap flow_ids;       /* UDP flows by id */
  struct ulistener *udp; /* this worker's UDP frontend sockets (one per frontend at most) */
  struct udpbufs *ub;   /* datagram buffers, made with the first UDP frontend */
  struct flow *udp_dead_flows;
  struct ulistener *udp_dead_listeners;
  uint64_t next_serial;
  listener *listeners[64];
  route *routes[64];    /* listeners[i]'s route, or NULL: ask JavaScript for each client */
  int nlisteners;
  int64_t accept_paused_until;
  char *buf;
  kpipe *pipes;         /* empty pipes for reuse */
  int npooled, npipes;  /* pooled, and in existence (pooled + in use) */
  report *out;
  size_t nout, capout;
  int urgent;           /* out holds a report JavaScript must answer: flush this turn */
  int64_t flush_by;     /* otherwise flush by then (ms) */
  int64_t scan_ms, next_scan;
} worker;

typedef struct relay {
  worker *w;
  int n;
  int closed;
  napi_threadsafe_function tsfn;
  listener *listeners;
  ucount *counts;       /* every UDP frontend's counters (JavaScript thread only) */
  struct sink *sink;    /* where reports are copied for JavaScript (addon.c) */
  int corked;           /* answering a report batch: commands are staged, posted together */
  int splice;           /* bulk directions splice (splice.c); BEACON_SPLICE=off copies always */
} relay;

/* splice.c */
int splice_pump(worker *w, conn *c, int d, int *budget, int *more, int *moved);
void splice_release(worker *w, conn *c);
void splice_close_pool(worker *w);

/* pump.c */
void service(worker *w, conn *c, int64_t now);
void kill_conn(worker *w, conn *c, int reason, int report_it);
void emit(worker *w, double kind, double id, double a, double b, double c, double d, double e, double f);
/* `picked`: the tag + 1 of the route backend the threads connect it to, 0 when JavaScript decides. */
void emit_peer(worker *w, double kind, double id, double lid, const struct sockaddr *peer, uint32_t picked);

/* udp.c */
void udp_listen(worker *w, struct ulistener *u, int64_t now);
void udp_unlisten(worker *w, uint32_t lid);
void udp_connect(worker *w, cmd *q, int64_t now);
void udp_reject(worker *w, uint64_t id, int64_t now);
void udp_cut(worker *w, uint32_t lid, uint32_t tag);
void udp_event(worker *w, uint64_t tag, int64_t now);
void udp_scan(worker *w, int64_t now);
void udp_reap(worker *w);
void udp_shut_down(worker *w);
struct ulistener *udp_new_listener(int fd, ucount *count, int64_t idle_ms, uint32_t max_flows);
void udp_free_listener(struct ulistener *u);
/* Tags in epoll's data (pointers are 16-byte aligned, so the low 4 bits are free). */
#define TAG_LISTENER 2u
#define TAG_UDP_FRONT 4u
#define TAG_UDP_FLOW 8u

/* route.c */
gate *gate_new(void);
int gate_enter(gate *g);
void gate_release(gate *g);
void free_conn(conn *c);
route *route_for(worker *w, const listener *l);
const rbackend *route_pick(listener *l, const route *rt);
void take_route(worker *w, route *rt);

/* worker.c */
void release_listener(listener *l);
void watch_timeout(worker *w, int64_t ms, int64_t now);
void set_keepalive(int fd, int seconds);
void *worker_run(void *arg);
void post(worker *w, cmd *q);
void post_list(worker *w, cmd *head, cmd *tail);
uint64_t new_id(worker *w);
int idmap_put(idmap *m, uint64_t key, void *c);
void *idmap_get(idmap *m, uint64_t key);
void idmap_del(idmap *m, uint64_t key);
int64_t now_ms(void);
int64_t now_us(void);
void free_cmd(cmd *q);

#endif
