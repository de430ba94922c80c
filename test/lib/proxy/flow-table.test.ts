import t from 'tap';
import { FlowTable } from '../../../lib/proxy/flow-table.js';

t.test('flow table scenario: each row builds on the last', async (t) => {
  const table = new FlowTable<string>({ maxFlows: 2, idleTimeoutMs: 100 });
  type Row = { desc: string; act: () => unknown; want: unknown; size: number; evictions: number };
  const rows: Row[] = [
    { desc: 'a new flow', act: () => table.add('a', 'A', 0), want: [], size: 1, evictions: 0 },
    { desc: 'a second flow', act: () => table.add('b', 'B', 10), want: [], size: 2, evictions: 0 },
    { desc: 'a is found and becomes the most recent', act: () => table.get('a', 20), want: 'A', size: 2, evictions: 0 },
    { desc: 'full: the least recent (b) is evicted for c', act: () => table.add('c', 'C', 30), want: ['B'], size: 2, evictions: 1 },
    { desc: 'b is gone', act: () => table.get('b', 30), want: undefined, size: 2, evictions: 1 },
    { desc: 'a idle for the timeout is not returned', act: () => table.get('a', 120), want: undefined, size: 2, evictions: 1 },
    { desc: 'expire removes a (idle), keeps c (last seen at 30)', act: () => table.expire(125), want: ['A'], size: 1, evictions: 1 },
    { desc: 're-adding a live key hands back the old value', act: () => table.add('c', 'C2', 126), want: ['C'], size: 1, evictions: 1 },
    { desc: 'delete', act: () => table.delete('c'), want: true, size: 0, evictions: 1 },
    { desc: 'delete of an absent key', act: () => table.delete('c'), want: false, size: 0, evictions: 1 },
    { desc: 'removeIf takes only what matches', act: () => { table.add('p', 'P', 150); table.add('q', 'Q', 151); return table.removeIf((v) => v === 'P'); }, want: ['P'], size: 1, evictions: 1 },
    { desc: 'clear returns what is left', act: () => { table.add('x', 'X', 200); return table.clear(); }, want: ['Q', 'X'], size: 0, evictions: 1 },
  ];
  for (const row of rows) {
    t.same(row.act(), row.want, row.desc);
    t.equal(table.size, row.size, `${row.desc}: size`);
    t.equal(table.evictions, row.evictions, `${row.desc}: evictions`);
  }
  t.equal(table.expirations, 1);
});

t.test('the bound holds under a flood of sources', async (t) => {
  const table = new FlowTable<number>({ maxFlows: 100, idleTimeoutMs: 1000 });
  for (let i = 0; i < 10_000; i++) table.add(`10.0.${i >> 8}.${i & 255}:1`, i, i);
  t.equal(table.size, 100);
  t.equal(table.evictions, 9_900);
  t.equal(table.get('10.0.39.15:1', 10_000), 9_999, 'the newest survives');
});
