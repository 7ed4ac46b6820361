#!/usr/bin/env node
// Turns docs/NAME.SECTION.md (qbh.1.md, qemu-bridge-helper.8.md) into roff man pages in man/.
// A deliberately small converter for the subset the pages use: "# NAME(S)" title, "## " sections,
// paragraphs, "- " lists, indented or fenced code blocks, **bold**, *italic* and `code`.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const esc = (s) => s.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');
const inline = (s) =>
  esc(s)
    .replace(/\*\*(.+?)\*\*/g, '\\fB$1\\fR')
    .replace(/`(.+?)`/g, '\\fB$1\\fR')
    .replace(/(^|\W)\*(.+?)\*(?=\W|$)/g, '$1\\fI$2\\fR');

/** Markdown text → roff for page `name` in `section`. */
export function toRoff(md, name, section, date) {
  const out = [`.TH ${name.toUpperCase()} ${section} "${date}" "qbh" "qbh manual"`];
  let code = false;
  for (const line of md.split('\n')) {
    if (line.startsWith('```')) {
      out.push(code ? '.fi\n.RE' : '.RS 4\n.nf');
      code = !code;
    } else if (code) out.push(esc(line) || '');
    else if (/^# /.test(line)) continue;
    else if (/^## /.test(line)) out.push(`.SH ${esc(line.slice(3).toUpperCase())}`);
    else if (/^### /.test(line)) out.push(`.SS ${inline(line.slice(4))}`);
    else if (/^- /.test(line)) out.push(`.IP \\(bu 2\n${inline(line.slice(2))}`);
    else if (/^ {2,}\S/.test(line) && out.at(-1)?.startsWith('.IP')) out.push(inline(line.trim()));
    else if (/^`[^`]+`$/.test(line.trim()) || /^\*\*.+\*\*$/.test(line.trim())) out.push(`.TP\n${inline(line.trim())}`);
    else if (line.trim() === '') out.push('.PP');
    else out.push(inline(line));
  }
  return out.join('\n').replace(/(\.PP\n)+/g, '.PP\n') + '\n';
}

const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000 || Date.now()).toISOString().slice(0, 10);
mkdirSync(`${root}man`, { recursive: true });
for (const f of readdirSync(`${root}docs`)) {
  const m = /^(.+)\.([18])\.md$/.exec(f);
  if (!m) continue;
  const [, name, section] = m;
  writeFileSync(`${root}man/${name}.${section}`, toRoff(readFileSync(`${root}docs/${f}`, 'utf8'), name, section, date));
  console.log(`man/${name}.${section}`);
}
