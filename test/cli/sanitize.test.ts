import test from 'ava';
import { deviceString, escapeBytes, unescapeBytes, sanitizeText, DISPLAY_MAX } from '../../appliance/sanitize.js';

test('printable ASCII passes through; trailing padding trimmed for display only', (t) => {
  const s = deviceString(Buffer.from('ST4000DM004-2CV1  \n\0'));
  t.is(s.text, 'ST4000DM004-2CV1');
  t.is(s.raw, 'ST4000DM004-2CV1  \\x0a\\x00');
  t.is(s.bytes, 20);
});

test('escape sequences and control bytes never reach the display form', (t) => {
  const hostile = Buffer.from('\x1b[2J\x1b]0;pwned\x07WD\rBlue\x00\x7f\x9b31m', 'latin1');
  const s = deviceString(hostile);

  t.false(/[\x00-\x1f\x7f-\xff]/.test(s.text), s.text);
  t.false(/[\x00-\x1f\x7f-\xff]/.test(s.raw));
  t.true(s.text.includes('\\x1b[2J'));
  t.true(s.text.includes('\\x9b'));
});

test('invalid UTF-8 is escaped byte for byte and round-trips exactly', (t) => {
  const bytes = Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x5c, 0x41, 0xe2, 0x82]);
  const s = deviceString(bytes);
  t.is(s.raw, '\\xc3(\\xff\\xfe\\\\A\\xe2\\x82');
  t.deepEqual(unescapeBytes(s.raw), bytes);
});

test('a 10 KB string is cut for display but kept whole in the record', (t) => {
  const big = Buffer.alloc(10 * 1024, 0x41);
  big[5000] = 0x1b;
  const s = deviceString(big);
  t.true(s.truncated);
  t.true(s.text.length <= DISPLAY_MAX);
  t.true(s.text.endsWith('...'));
  t.is(unescapeBytes(s.raw).length, 10 * 1024);
  t.deepEqual(unescapeBytes(s.raw), big);
});

test('cutting never splits an escape', (t) => {
  for (let i = 0; i < 80; i++) {
    const b = Buffer.concat([Buffer.alloc(i, 0x41), Buffer.alloc(40, 0x01)]);
    const s = deviceString(b, 32);
    t.true(s.text.length <= 32);
    t.regex(s.text.replace(/\.\.\.$/, ''), /^(A|\\x01)*$/);
  }
});

test('escapeBytes and unescapeBytes are inverse over all byte values', (t) => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  t.deepEqual(unescapeBytes(escapeBytes(all)), all);
});

test('sanitizeText treats JS strings (e.g. DMI values) the same way', (t) => {
  t.is(sanitizeText('Dell\u001b[31m Inc.\u2603').text, 'Dell\\x1b[31m Inc.\\xe2\\x98\\x83');
});
