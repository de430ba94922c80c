/*
 * Reports from the worker threads to JavaScript (addon.c's header lists them): each batch
 * is copied into one Float64Array kept across batches, and the batch's answers are corked
 * so they reach each worker together.
 */
#include "addon.h"
#include <stdlib.h>
#include <string.h>

void free_sink(napi_env env, void *data, void *hint) {
  (void)hint;
  sink *k = data;
  if (k->array) napi_delete_reference(env, k->array);
  free(k);
}

/* The sink's array, at least `need` doubles long; NULL when it cannot be made. */
static napi_value sink_array(napi_env env, sink *k, size_t need) {
  napi_value arr;
  if (k->array && k->cap >= need && napi_get_reference_value(env, k->array, &arr) == napi_ok && arr) return arr;
  size_t cap = k->cap ? k->cap : 64 * 8; /* 64 reports: a typical batch */
  while (cap < need) cap *= 2;
  void *mem;
  napi_value ab;
  if (napi_create_arraybuffer(env, cap * sizeof(double), &mem, &ab) != napi_ok
      || napi_create_typedarray(env, napi_float64_array, cap, ab, 0, &arr) != napi_ok) return NULL;
  if (k->array) napi_delete_reference(env, k->array);
  k->array = NULL;
  if (napi_create_reference(env, arr, 1, &k->array) != napi_ok) return NULL;
  k->data = mem;
  k->cap = cap;
  return arr;
}

/* On the JavaScript thread: onReports(array, length) with the batch in array[0..length). */
void call_js(napi_env env, napi_value fn, void *ctx, void *data) {
  batch *b = data;
  sink *k = ctx;
  if (env && fn) {
    size_t len = b->n * 8;
    napi_value argv[2], undef;
    argv[0] = sink_array(env, k, len);
    if (argv[0] && napi_create_uint32(env, (uint32_t)len, &argv[1]) == napi_ok) {
      memcpy(k->data, b->r, len * sizeof(double));
      napi_get_undefined(env, &undef);
      relay *r = k->r;
      if (r) r->corked = 1; /* the batch's answers go out together: one wake-up per worker */
      napi_call_function(env, undef, fn, 2, argv, NULL);
      if (k->r) uncork(k->r);
    }
  }
  free(b);
}
