// dist/qbh runs `qbh WORD …` from a body with WORD's commands alone (src/cli/groups.ts,
// scripts/bundle.mjs). That answers exactly as the whole CLI only if the group's list holds every
// command whose first word is WORD, and nothing else; and only if each listed word has its body.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMAND_GROUPS } from '../src/cli/groups.js';
import { commands } from '../src/cli/run.js';
import type { Command } from '../src/cli/command.js';
import { ROOT } from './helper-lib.js';

t.test("each group's list is exactly the commands of its first word, in run.ts's order", async (t) => {
  for (const g of COMMAND_GROUPS) {
    const mod = (await import(new URL(`../src/cli/${g.module}`, import.meta.url).href)) as Record<string, Command[]>;
    const own = commands.filter((c) => c.name.split(' ')[0] === g.word);
    t.ok(own.length > 0, `${g.word}: some command starts with it`);
    t.same(mod[g.exportName]?.map((c) => c.name), own.map((c) => c.name), g.word);
    t.ok(mod[g.exportName]?.every((c, i) => c === own[i]), `${g.word}: the very objects run.ts lists`);
  }
  t.equal(new Set(COMMAND_GROUPS.map((g) => g.word)).size, COMMAND_GROUPS.length, 'no word twice');
});

t.test('dist/qbh.cjs names a body and a code cache for each group and for the rest', async (t) => {
  const loader = readFileSync(join(ROOT, 'dist', 'qbh.cjs'), 'utf8');
  for (const g of COMMAND_GROUPS) t.match(loader, `["${g.word}","`, g.word);
  const ids = [...new Set(loader.match(/(?<=['".])[0-9a-f]{16}(?=['"])/g))];
  t.equal(ids.length, COMMAND_GROUPS.length + 1);
  for (const id of ids) {
    t.ok(existsSync(join(ROOT, 'dist', `qbh.${id}.body.cjs`)), `body ${id}`);
    t.ok(existsSync(join(ROOT, 'dist', `qbh.${id}.code-cache`)), `code cache ${id}`);
  }
});
