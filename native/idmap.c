/*
 * id -> conn (or UDP flow): open addressing, linear probing, backward-shift deletion, so
 * lookups stay short without tombstones. Each worker's maps are its own (no locking).
 */
#include "relay.h"
#include <stdlib.h>

static size_t slot(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1); }

int idmap_put(idmap *m, uint64_t key, void *c) {
  if ((m->size + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) { free(keys); free(vals); return -1; }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->vals[i]) continue;
      size_t j = slot(m->keys[i], cap);
      while (vals[j]) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
  }
  size_t i = slot(key, m->cap);
  while (m->vals[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  if (!m->vals[i]) m->size++;
  m->keys[i] = key;
  m->vals[i] = c;
  return 0;
}

void *idmap_get(idmap *m, uint64_t key) {
  if (!m->cap) return NULL;
  for (size_t i = slot(key, m->cap); m->vals[i]; i = (i + 1) & (m->cap - 1))
    if (m->keys[i] == key) return m->vals[i];
  return NULL;
}

void idmap_del(idmap *m, uint64_t key) {
  if (!m->cap) return;
  size_t mask = m->cap - 1, i = slot(key, m->cap);
  while (m->keys[i] != key || !m->vals[i]) {
    if (!m->vals[i]) return;
    i = (i + 1) & mask;
  }
  /* Backward shift: pull later entries of the same probe run into the hole. */
  for (size_t j = i;;) {
    j = (j + 1) & mask;
    if (!m->vals[j]) break;
    size_t k = slot(m->keys[j], m->cap);
    int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    m->keys[i] = m->keys[j];
    m->vals[i] = m->vals[j];
    i = j;
  }
  m->vals[i] = NULL;
  m->keys[i] = 0;
  m->size--;
}
