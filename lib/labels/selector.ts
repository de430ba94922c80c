/**
 * Kubernetes label selectors (metav1.LabelSelector): `matchLabels` AND-ed with
 * `matchExpressions`. An empty selector matches everything, as upstream. The
 * parsing and validation of selectors lives with the configuration; this file
 * only evaluates already-valid ones.
 */
export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels: Labels;
  readonly matchExpressions: readonly SelectorRequirement[];
}

export const EVERYTHING: LabelSelector = Object.freeze({ matchLabels: Object.freeze({}), matchExpressions: Object.freeze([]) });

export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels)) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions) {
    const has = Object.hasOwn(labels, req.key);
    switch (req.operator) {
      case 'In':
        if (!has || !req.values.includes(labels[req.key]!)) return false;
        break;
      case 'NotIn':
        // Upstream: NotIn matches when the label is absent too.
        if (has && req.values.includes(labels[req.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** True if any selector in the list matches; an empty list matches nothing. */
export function anySelectorMatches(selectors: readonly LabelSelector[], labels: Labels): boolean {
  return selectors.some((s) => selectorMatches(s, labels));
}
