/** Kubernetes naming rules that configuration documents must follow. */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Object names: a DNS-1123 subdomain, at most 253 characters (k8s.io/apimachinery validation). */
export function dnsSubdomainProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > 253) return 'must be at most 253 characters';
  if (!name.split('.').every((l) => DNS1123_LABEL.test(l))) {
    return `"${name}" must be lower-case alphanumerics, "-" and ".", starting and ending alphanumeric (DNS-1123 subdomain)`;
  }
  return undefined;
}

/** A label key: optional DNS subdomain prefix and "/", then a name of at most 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0) {
    const prefixProblem = dnsSubdomainProblem(key.slice(0, slash));
    if (prefixProblem) return `label key prefix ${prefixProblem}`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `label key "${key}": the name part must be 1-63 characters of alphanumerics, "-", "_" and ".", starting and ending alphanumeric`;
  }
  return undefined;
}

/** A label value: empty, or at most 63 characters like a label name. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !LABEL_NAME.test(value)) {
    return `label value "${value}" must be at most 63 characters of alphanumerics, "-", "_" and ".", starting and ending alphanumeric`;
  }
  return undefined;
}

/** Linux interface names: 1 to 15 bytes (IFNAMSIZ 16 with the NUL), no "/" or whitespace. */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 15) return `interface name "${name}" must be 1 to 15 characters (IFNAMSIZ)`;
  if (/[\s/:]/.test(name)) return `interface name "${name}" must not contain "/", ":" or whitespace`;
  return undefined;
}
