/**
 * Who should lead which name: a pure function of the names and the live members, so every
 * member that sees the same membership computes the same assignment without talking to the
 * others. The database still decides who leads; this only says who should try, and who
 * should hand a name over.
 *
 * Quotas first: each member gets floor(N·w/W) names, and the remainder goes one each to the
 * members with the largest fractional share (ties by a hash of the id), so equal members differ
 * by at most one. Then names go out by rendezvous hashing under those quotas: every
 * (name, member) pair has a score, pairs are taken from the highest score down, and a pair is
 * used when its name is still free and its member has room. A name's best-scoring member keeps
 * it unless that member is full; a member joining takes mostly names it outscores everyone on,
 * so a join moves few names beyond the ones the new quotas require.
 */

export interface Member {
  readonly id: string;
  /** Relative capacity, a positive integer: a member of weight 2 leads about twice as many names. */
  readonly weight: number;
}

const FNV_OFFSET = 0x811c9dc5;
const SEED_B = 0x9e3779b9;

/** FNV-1a over UTF-16 code units, continuing from state `h` (no final mix). */
function fnv(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** murmur3's fmix32: the avalanche that makes FNV good enough to spread names. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units with a final avalanche (murmur3's fmix32): fast, and good enough to spread names. */
function hash32(text: string, seed: number): number {
  return fmix(fnv((FNV_OFFSET ^ seed) >>> 0, text));
}

/**
 * A 52-bit score for one (name, member) pair: two independent 32-bit hashes of
 * `member \0 name`, so ties are practically impossible. Part of the contract between members:
 * every member of a fleet must compute the same scores, whatever its version.
 */
export function pairScore(name: string, member: string): number {
  return scorer(member)(name);
}

/** `pairScore` for one member: the hashes' state after `member \0` is computed once. */
function scorer(member: string): (name: string) => number {
  const a = fnv(fnv(FNV_OFFSET, member), '\u0000');
  const b = fnv(fnv((FNV_OFFSET ^ SEED_B) >>> 0, member), '\u0000');
  return (name) => fmix(fnv(a, name)) * 2 ** 20 + (fmix(fnv(b, name)) >>> 12);
}

/** How many names each member should lead: proportional to weight, spread ≤ 1 among equal weights. */
export function quotas(count: number, members: readonly Member[]): Map<string, number> {
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  const result = new Map<string, number>();
  if (members.length === 0 || total <= 0) return result;
  const shares = members.map((m) => ({ id: m.id, exact: (count * m.weight) / total }));
  let given = 0;
  for (const share of shares) {
    const base = Math.floor(share.exact);
    result.set(share.id, base);
    given += base;
  }
  const byRemainder = [...shares].sort(
    (a, b) =>
      b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)) || hash32(a.id, 7) - hash32(b.id, 7) || (a.id < b.id ? -1 : 1),
  );
  for (let i = 0; given < count && i < byRemainder.length; i++, given++) {
    const id = byRemainder[i]!.id;
    result.set(id, result.get(id)! + 1);
  }
  return result;
}

/**
 * name → member id for every name, under the quotas. Deterministic: the order of the inputs
 * does not matter.
 *
 * The definition is the greedy pass over every (name, member) pair from the highest score
 * down (ties: name, then member, in code-unit order), taking a pair when its name is free and
 * its member has room. Sorting all N·M pairs cost 49 ms for 10,000 names and 8 members, on
 * every member at every change of view. The same pass, lazily: each free name offers only its
 * best member not yet found full, from a max-heap of names; a member's room only ever shrinks,
 * so a pair skipped as full would have been skipped in the full sort too, and the pairs are met
 * in the same order. About N log N plus the N·M scores.
 */
export function assign(names: readonly string[], members: readonly Member[]): Map<string, string> {
  const result = new Map<string, string>();
  const n = names.length;
  const m = members.length;
  if (m === 0 || n === 0) return result;
  const room = quotas(n, members);
  const ids = members.map((member) => member.id);
  // One room per id, shared by every entry of an id listed twice (a member restarted with
  // another weight has two rows until the old one expires): what the full pass does.
  const first = new Map<string, number>();
  for (const [j, id] of ids.entries()) if (!first.has(id)) first.set(id, j);
  const slot = ids.map((id) => first.get(id)!);
  const left = ids.map((id) => room.get(id)!);
  // Per name, its members best first (score, then id); scores kept for the heap.
  const scores = new Float64Array(n * m);
  const order = new Uint32Array(n * m);
  const scorers = ids.map(scorer);
  for (let i = 0; i < n; i++) {
    const base = i * m;
    const name = names[i]!;
    for (let j = 0; j < m; j++) {
      const sc = scorers[j]!(name);
      // Insertion into this name's list, best first.
      let k = j;
      while (k > 0) {
        const prev = order[base + k - 1]!;
        const ps = scores[base + k - 1]!;
        if (ps > sc || (ps === sc && ids[prev]! < ids[j]!)) break;
        order[base + k] = prev;
        scores[base + k] = ps;
        k--;
      }
      order[base + k] = j;
      scores[base + k] = sc;
    }
  }
  const next = new Uint32Array(n); // per name: the position in its list of the member it offers now
  const before = (x: number, y: number): boolean => {
    const sx = scores[x * m + next[x]!]!;
    const sy = scores[y * m + next[y]!]!;
    if (sx !== sy) return sx > sy;
    const nx = names[x]!;
    const ny = names[y]!;
    if (nx !== ny) return nx < ny;
    return ids[order[x * m + next[x]!]!]! < ids[order[y * m + next[y]!]!]!;
  };
  const heap = new Uint32Array(n);
  for (let i = 0; i < n; i++) heap[i] = i;
  let size = n;
  const down = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      if (l >= size) return;
      const r = l + 1;
      const best = r < size && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[best]!, heap[at]!)) return;
      const t = heap[at]!;
      heap[at] = heap[best]!;
      heap[best] = t;
      at = best;
    }
  };
  for (let i = (size >> 1) - 1; i >= 0; i--) down(i);
  while (size > 0) {
    const top = heap[0]!;
    const member = order[top * m + next[top]!]!;
    if (result.has(names[top]!)) {
      heap[0] = heap[--size]!; // a name listed twice is given once, as the full pass gives it
    } else if (left[slot[member]!]! > 0) {
      left[slot[member]!]!--;
      result.set(names[top]!, ids[member]!);
      heap[0] = heap[--size]!;
    } else if (++next[top]! >= m) {
      heap[0] = heap[--size]!; // no member has room: cannot happen while the quotas add up to n
    }
    down(0);
  }
  return result;
}
