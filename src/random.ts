/**
 * Seeded pseudo-random numbers (mulberry32), for deterministic runs: the daemon's pacing under
 * test and the simulator's faults. Not for anything secret.
 */

/** A generator of numbers in [0, 1) from a 32-bit seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** A number in [0, 1) that depends only on its parts: the same parts, the same number. */
export function hashed(...parts: (string | number)[]): number {
  // FNV-1a over the parts, then one mulberry32 step to spread the bits.
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return seeded(h)();
}
