/*
 * A listener's route: JavaScript's standing answer for its new clients, for the common case
 * where the answer does not depend on the client (round-robin over the healthy backends, no
 * source ranges, rate limit, affinity or PROXY header). With a route the worker connects a
 * client the moment it accepts it, instead of reporting it and waiting for JavaScript's
 * connect(): one thread hop and two wake-ups less per connection, which is what HAProxy
 * pays (issue 4: new connections per second). JavaScript still hears every accept (with the
 * tag picked), connect and end, so its counters, health and retries are unchanged; a failed
 * connect goes back to JavaScript, which retries on another backend as for any client.
 * The threads also keep the listener's maxConnections: only they know at once how many of
 * its connections are open (JavaScript hears of them a moment later, REPORT_DELAY_MS).
 *
 * Versions: each worker takes a new route from its command queue and acknowledges it
 * (EV_ROUTES, gen). Its reports are delivered in order, so once every worker has
 * acknowledged gen g, no report naming a tag of an older route is still on its way, and
 * JavaScript may give those tags' slots back.
 */
#include "relay.h"
#include <stdlib.h>

gate *gate_new(void) {
  gate *g = calloc(1, sizeof *g);
  if (g) g->refs = 1;
  return g;
}

/* A connection joins: returns how many are open with it. */
int gate_enter(gate *g) {
  __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
  return __atomic_add_fetch(&g->open, 1, __ATOMIC_ACQ_REL);
}

void gate_release(gate *g) {
  if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) free(g);
}

/* Every connection is freed here: it leaves its listener's count. */
void free_conn(conn *c) {
  if (c->gate) {
    __atomic_sub_fetch(&c->gate->open, 1, __ATOMIC_ACQ_REL);
    gate_release(c->gate);
  }
  free(c);
}

route *route_for(worker *w, const listener *l) {
  for (int i = 0; i < w->nlisteners; i++) if (w->listeners[i] == l) return w->routes[i];
  return NULL;
}

/* The backend for a client just accepted, or NULL: no route, JavaScript decides. */
const rbackend *route_pick(listener *l, const route *rt) {
  if (!rt || rt->n == 0) return NULL;
  return &rt->b[__atomic_fetch_add(&l->rr, 1, __ATOMIC_RELAXED) % rt->n];
}

/* CMD_ROUTES: rt replaces the listener's route (an empty one removes it); acknowledged
 * even when the listener is gone, so JavaScript's count of acknowledgements completes. */
void take_route(worker *w, route *rt) {
  uint32_t lid = rt->lid, gen = rt->gen;
  int i = 0;
  while (i < w->nlisteners && (uint32_t)w->listeners[i]->id != lid) i++;
  if (i < w->nlisteners && rt->n > 0) {
    free(w->routes[i]);
    w->routes[i] = rt;
  } else {
    if (i < w->nlisteners) { free(w->routes[i]); w->routes[i] = NULL; }
    free(rt);
  }
  emit(w, EV_ROUTES, gen, lid, 0, 0, 0, 0, 0);
}
