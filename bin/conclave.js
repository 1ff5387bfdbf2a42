#!/usr/bin/env node
// The `conclave` command: server, cluster, shell, status. The TypeScript
// sources are compiled to dist/ by `npm install` (the prepare script) and by
// `npm run build`.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/server/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('conclave: dist/ is missing; run `npm install` or `npm run build` first\n')
  process.exit(2)
}
const { main } = await import(entry.href)
// Exit once the command is done: a peer link still connecting, or a DNS lookup of a peer that
// does not resolve, must not hold a stopped server's process open (seen in containers: 5-30 s).
process.exit(await main(process.argv.slice(2)))
