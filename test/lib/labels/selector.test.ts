import t from 'tap';
import { anySelectorMatches, EVERYTHING, selectorMatches, type LabelSelector } from '../../../lib/labels/selector.js';

const sel = (matchLabels: Record<string, string>, exprs: [string, LabelSelector['matchExpressions'][number]['operator'], string[]][] = []): LabelSelector => ({
  matchLabels,
  matchExpressions: exprs.map(([key, operator, values]) => ({ key, operator, values })),
});

t.test('label selectors match as the API server does', async (t) => {
  const labels = { app: 'web', tier: 'front', empty: '' };
  const rows: { desc: string; s: LabelSelector; expect: boolean }[] = [
    { desc: 'empty selector matches everything', s: EVERYTHING, expect: true },
    { desc: 'matchLabels equal', s: sel({ app: 'web' }), expect: true },
    { desc: 'matchLabels differ', s: sel({ app: 'db' }), expect: false },
    { desc: 'matchLabels of an empty value', s: sel({ empty: '' }), expect: true },
    { desc: 'matchLabels missing label', s: sel({ zone: 'a' }), expect: false },
    { desc: 'In hit', s: sel({}, [['tier', 'In', ['back', 'front']]]), expect: true },
    { desc: 'In miss', s: sel({}, [['tier', 'In', ['back']]]), expect: false },
    { desc: 'In on a missing label', s: sel({}, [['zone', 'In', ['a']]]), expect: false },
    { desc: 'NotIn hit', s: sel({}, [['tier', 'NotIn', ['front']]]), expect: false },
    { desc: 'NotIn miss', s: sel({}, [['tier', 'NotIn', ['back']]]), expect: true },
    { desc: 'NotIn matches a missing label', s: sel({}, [['zone', 'NotIn', ['a']]]), expect: true },
    { desc: 'Exists', s: sel({}, [['empty', 'Exists', []]]), expect: true },
    { desc: 'Exists on a missing label', s: sel({}, [['zone', 'Exists', []]]), expect: false },
    { desc: 'DoesNotExist', s: sel({}, [['zone', 'DoesNotExist', []]]), expect: true },
    { desc: 'DoesNotExist on a present label', s: sel({}, [['app', 'DoesNotExist', []]]), expect: false },
    { desc: 'labels AND expressions', s: sel({ app: 'web' }, [['tier', 'In', ['back']]]), expect: false },
    { desc: 'an inherited property is not a label', s: sel({}, [['toString', 'Exists', []]]), expect: false },
  ];
  for (const row of rows) t.equal(selectorMatches(row.s, labels), row.expect, row.desc);
  t.equal(anySelectorMatches([], labels), false, 'no selectors: no match');
  t.equal(anySelectorMatches([sel({ app: 'db' }), sel({ app: 'web' })], labels), true, 'selectors are OR-ed');
});
