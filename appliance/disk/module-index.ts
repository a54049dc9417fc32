// Stage 1: which kernel module claims a device, from the kernel's own index
// (modules.alias, as modprobe uses it), and whether that module is in the
// running kernel. Says why a controller has no driver.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Sysfs } from './sysfs.js';

export interface ModuleIndex {
  /** Modules whose alias pattern matches `modalias`, in index order, without repeats. */
  forAlias(modalias: string): string[];
  /** Loaded or built into the kernel. */
  isLoaded(module: string): boolean;
}

/** modules.alias is a few MiB on a full system: read at most this much. */
const INDEX_MAX_BYTES = 32 * 1024 * 1024;

interface Alias {
  /** The pattern's text up to its first wildcard: a modalias that does not start with it cannot match. */
  prefix: string;
  glob: string;
  /** Made on first use: most patterns never get past the prefix test. */
  pattern: RegExp | null;
  module: string;
}

/** A modprobe alias pattern (shell glob: * ? [...]) as an anchored regular expression. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const set = glob
          .slice(i + 1, end)
          .replace(/\\/g, '\\\\')
          .replace(/^!/, '^');
        re += `[${set}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function readSmall(file: string): string | null {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length <= INDEX_MAX_BYTES ? text : null;
  } catch {
    return null;
  }
}

const normal = (m: string) => m.replace(/-/g, '_');

/** The index of the kernel whose modules are in `moduleDir`; empty answers when it has none. */
/** Parsed alias lists by module directory: the index of a running kernel does not change. */
const parsed = new Map<string, Alias[]>();

function aliasesIn(moduleDir: string): Alias[] {
  let list = parsed.get(moduleDir);
  if (!list) {
    list = (readSmall(path.join(moduleDir, 'modules.alias')) ?? '')
      .split('\n')
      .map((l) => /^alias\s+(\S+)\s+(\S+)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => {
        const glob = m[1] as string;
        const wild = glob.search(/[*?[]/);
        return { prefix: wild < 0 ? glob : glob.slice(0, wild), glob, pattern: null, module: m[2] as string };
      });
    parsed.set(moduleDir, list);
  }
  return list;
}

/** modules.builtin by module directory, and each modalias's answer: the disk list asks every second, and under a slow CPU matching thousands of patterns each time starved the acquisition sharing the process. */
const builtins = new Map<string, Set<string>>();
const answers = new Map<string, Map<string, string[]>>();

export function driverModules(moduleDir: string, sysfs: Sysfs): ModuleIndex {
  const load = () => aliasesIn(moduleDir);
  let builtin = builtins.get(moduleDir);
  if (!builtin) {
    builtin = new Set(
      (readSmall(path.join(moduleDir, 'modules.builtin')) ?? '')
        .split('\n')
        .filter((l) => l.endsWith('.ko'))
        .map((l) => normal(path.basename(l, '.ko'))),
    );
    builtins.set(moduleDir, builtin);
  }
  const known = builtin;
  let answered = answers.get(moduleDir);
  if (!answered) {
    answered = new Map();
    answers.set(moduleDir, answered);
  }
  const cache = answered;
  return {
    forAlias(modalias) {
      const hit = cache.get(modalias);
      if (hit) return [...hit];
      const found: string[] = [];
      // Thousands of patterns: a prefix test first, a regular expression only for the few that pass it
      // (compiling and running them all took half a minute under TCG).
      for (const a of load()) {
        if (!modalias.startsWith(a.prefix)) continue;
        a.pattern ??= globToRegExp(a.glob);
        if (a.pattern.test(modalias) && !found.includes(a.module)) found.push(a.module);
      }
      if (cache.size < 4096) cache.set(modalias, found);
      return [...found];
    },
    isLoaded(module) {
      const m = normal(module);
      return known.has(m) || sysfs.exists(`module/${m}/initstate`) || sysfs.exists(`module/${m}/refcnt`);
    },
  };
}
