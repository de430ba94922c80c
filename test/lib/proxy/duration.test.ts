import t from 'tap';
import { parseDuration } from '../../../lib/proxy/duration.js';

t.test('durations as Go writes them', async (t) => {
  const rows: { desc: string; text: string; ms?: number; reason?: RegExp }[] = [
    { desc: 'milliseconds', text: '500ms', ms: 500 },
    { desc: 'seconds', text: '2s', ms: 2000 },
    { desc: 'fractions', text: '1.5s', ms: 1500 },
    { desc: 'a leading dot', text: '.5s', ms: 500 },
    { desc: 'several parts add up', text: '1m30s', ms: 90_000 },
    { desc: 'hours', text: '1h', ms: 3_600_000 },
    { desc: 'surrounding spaces are trimmed', text: ' 3s ', ms: 3000 },
    { desc: 'zero is a duration', text: '0s', ms: 0 },
    { desc: 'a bare number has no unit', text: '30', reason: /not a duration at "30".*unit/ },
    { desc: 'an unknown unit', text: '3d', reason: /at "3d"/ },
    { desc: 'garbage after a valid part', text: '2sx', reason: /at "x"/ },
    { desc: 'a negative duration', text: '-1s', reason: /at "-1s"/ },
    { desc: 'empty', text: '', reason: /is empty/ },
  ];
  for (const row of rows) {
    const r = parseDuration(row.text);
    if (row.ms !== undefined) t.same(r, { ok: true, ms: row.ms }, row.desc);
    else t.match(r, { ok: false, reason: row.reason }, row.desc);
  }
});
