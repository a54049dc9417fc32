// RFC 8785 JSON Canonicalization Scheme: the same value always gives the same
// bytes, so a hash or signature over a line can be recomputed by anyone.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Serializes `value` canonically: object keys sorted by UTF-16 code units, no
 * whitespace, strings and numbers as ECMAScript JSON.stringify writes them
 * (which is what RFC 8785 specifies). Undefined members are left out, as
 * JSON.stringify does; non-finite numbers and other types are refused.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v === undefined ? null : v)).join(',') + ']';
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}';
  }
  throw new TypeError(`canonical JSON has no ${typeof value}`);
}
