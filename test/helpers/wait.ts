// Waiting in tests for what happens a moment later (native relay reports come within
// REPORT_DELAY_MS, sockets close asynchronously): polls `fn` until it holds or `ms` pass.

/** Resolves with fn()'s last answer: true once it held, false after `ms`. */
export async function until(fn: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!fn() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return fn();
}
