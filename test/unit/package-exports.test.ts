/**
 * Every entry of package.json's `exports` and `bin` names a module this
 * repository builds: its TypeScript source exists (the `./server` export once
 * pointed at a file that did not).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')

describe('package.json', () => {
  it('exports only modules that exist', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>
      bin: Record<string, string>
    }
    const missing: string[] = []
    for (const [name, entry] of Object.entries(pkg.exports)) {
      for (const target of [entry.default, entry.types]) {
        // ./dist/x/y.js (or .d.ts) is built from ./x/y.ts
        const source = target.replace(/^\.\/dist\//, '').replace(/\.d\.ts$|\.js$/, '.ts')
        if (!existsSync(join(ROOT, source))) missing.push(`${name}: ${target} (no ${source})`)
      }
    }
    for (const [name, file] of Object.entries(pkg.bin))
      if (!existsSync(join(ROOT, file))) missing.push(`bin ${name}: ${file}`)
    expect(missing).toEqual([])
  })
})
