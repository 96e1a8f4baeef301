// Parse every ```mermaid block of a Markdown file with Mermaid's own parser.
import { JSDOM } from 'jsdom';
import fs from 'node:fs';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window; globalThis.document = dom.window.document;
globalThis.DOMPurify = undefined;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
const md = fs.readFileSync(process.argv[2], 'utf8');
const blocks = [...md.matchAll(/```mermaid\n([\s\S]*?)```/g)].map(m => m[1]);
if (blocks.length === 0) { console.error('no mermaid block'); process.exit(2); }
for (const b of blocks) {
  try { const r = await mermaid.parse(b); console.log('ok', r.diagramType); }
  catch (e) { console.error('PARSE ERROR', e.message ?? e); process.exit(1); }
}
