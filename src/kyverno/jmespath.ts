/** Small builders for JMESPath text, so quoting rules live in one place. */

/** A quoted identifier, for keys such as `kueue.x-k8s.io/queue-name`. */
export function field(name: string): string {
  return JSON.stringify(name);
}

/** A raw string literal. */
export function str(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A JSON literal. */
export function literal(value: unknown): string {
  return `\`${JSON.stringify(value).replace(/`/g, '\\`')}\``;
}

/** A Kyverno variable reference, substituted before the rule runs. */
export function variable(expression: string): string {
  return `{{ ${expression} }}`;
}

/** The value of a label of `path`'s object, or '' when it has none. */
export function label(path: string, key: string): string {
  return `${path}.metadata.labels.${field(key)} || ''`;
}

/** The status of condition `type` in `path`'s status, or '' when it has none. */
export function conditionStatus(path: string, type: string): string {
  return `${path}.status.conditions[?type==${str(type)}].status | [0] || ''`;
}
