/**
 * Strings that come from devices (sysfs, VPD pages, USB descriptors) are
 * attacker-controlled: they may hold escape sequences, control bytes, invalid
 * UTF-8 or kilobytes of padding. Each one is kept in two forms:
 *  - `text`: safe to put on any terminal or in a table: printable ASCII only,
 *    other bytes as \xNN, trimmed, cut to a display length;
 *  - `raw`: the exact bytes, losslessly escaped the same way, for the record.
 */
export interface DeviceString {
  text: string;
  raw: string;
  /** Byte length of the original value. */
  bytes: number;
  /** True when `text` was shortened for display. */
  truncated: boolean;
}

/** Display limit for one device string; the record keeps the whole value. */
export const DISPLAY_MAX = 64;

/** Lossless, ASCII-only escaping: printable ASCII stays, backslash doubles, all else \xNN. */
export function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b <= 0x7e) out += String.fromCharCode(b);
    else out += '\\x' + b.toString(16).padStart(2, '0');
  }
  return out;
}

/** Reverses escapeBytes; used by tests and by readers of a record. */
export function unescapeBytes(escaped: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped.charCodeAt(i);
    if (c === 0x5c && escaped[i + 1] === '\\') {
      out.push(0x5c);
      i++;
    } else if (c === 0x5c && escaped[i + 1] === 'x') {
      out.push(parseInt(escaped.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      out.push(c);
    }
  }
  return Buffer.from(out);
}

function cut(text: string, max: number): { text: string; truncated: boolean } {
  if (text.length <= max) return { text, truncated: false };
  // Never cut inside a \xNN or \\ escape.
  let end = max - 3;
  const tail = text.slice(Math.max(0, end - 3), end);
  const esc = tail.lastIndexOf('\\');
  if (esc >= 0) end = Math.max(0, end - 3) + esc;
  return { text: text.slice(0, end) + '...', truncated: true };
}

/**
 * Sanitizes bytes read from a device attribute. Surrounding whitespace and NUL
 * padding are trimmed for display only.
 */
export function deviceString(bytes: Uint8Array, max = DISPLAY_MAX): DeviceString {
  const raw = escapeBytes(bytes);
  let start = 0;
  let end = bytes.length;
  const blank = (b: number | undefined) => b === 0x20 || b === 0x00 || b === 0x0a || b === 0x09 || b === 0x0d;
  while (start < end && blank(bytes[start])) start++;
  while (end > start && blank(bytes[end - 1])) end--;
  const shown = cut(escapeBytes(bytes.subarray(start, end)), max);
  return { text: shown.text, raw, bytes: bytes.length, truncated: shown.truncated };
}

/** Same treatment for a JS string from another untrusted source (systeminformation, case forms). */
export function sanitizeText(value: string, max = DISPLAY_MAX): DeviceString {
  return deviceString(Buffer.from(value, 'utf8'), max);
}

/** Display-only form of an arbitrary string (paths, mount points). */
export function safeText(value: string, max = 256): string {
  return sanitizeText(value, max).text;
}
