/**
 * Every setting server/config.ts validates is in docs/operations.md's
 * settings table, so a limit added without its documentation fails here
 * (the style guide: every limit a named setting, with a default, documented).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ServerConfig } from '../../../server/config.js'

const operations = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8')
const table = operations.slice(operations.indexOf('## Settings'), operations.indexOf('## Limits'))

describe('settings and their documentation', () => {
  // A row may name several settings: `| \`a\`, \`b\` | …`.
  const named = new Set(
    table
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .flatMap((l) => [...(l.split('|')[1] ?? '').matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1])),
  )
  it.each(Object.keys(ServerConfig.shape))('%s has a row in the settings table', (key) => {
    expect(named.has(key)).toBe(true)
  })
})
