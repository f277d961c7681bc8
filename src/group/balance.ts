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

/** FNV-1a over UTF-16 code units with a final avalanche (murmur3's fmix32): fast, and good enough to spread names. */
function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 52-bit score for one (name, member) pair; two independent 32-bit hashes make ties practically impossible. */
function score(name: string, member: string): number {
  const key = `${member}\u0000${name}`;
  return hash32(key, 0) * 2 ** 20 + (hash32(key, 0x9e3779b9) >>> 12);
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

/** name → member id for every name, under the quotas. Deterministic: the order of the inputs does not matter. */
export function assign(names: readonly string[], members: readonly Member[]): Map<string, string> {
  const result = new Map<string, string>();
  if (members.length === 0) return result;
  const room = quotas(names.length, members);
  const pairs: { score: number; name: string; member: string }[] = [];
  for (const name of names) for (const member of members) pairs.push({ score: score(name, member.id), name, member: member.id });
  pairs.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.member < b.member ? -1 : 1));
  for (const pair of pairs) {
    if (result.has(pair.name)) continue;
    const left = room.get(pair.member)!;
    if (left <= 0) continue;
    room.set(pair.member, left - 1);
    result.set(pair.name, pair.member);
    if (result.size === names.length) break;
  }
  return result;
}
