/**
 * The assignment by its definition, for the tests and the benchmark to hold `assign` to: every
 * (name, member) pair sorted from the highest score down (ties: name, then member), each taken
 * when its name is free and its member has room. What `assign` computed before it went lazy.
 */
import { pairScore, quotas } from '../../src/dev/testing.js';
import type { Member } from '../../src/index.js';

export function assignByFullSort(names: readonly string[], members: readonly Member[]): Map<string, string> {
  const result = new Map<string, string>();
  if (members.length === 0) return result;
  const room = quotas(names.length, members);
  const pairs: { score: number; name: string; member: string }[] = [];
  for (const name of names) for (const member of members) pairs.push({ score: pairScore(name, member.id), name, member: member.id });
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
