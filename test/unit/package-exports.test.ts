/**
 * The two packages' manifests (docs/packaging.md): every entry of `exports`
 * and `bin` names a module this repository builds (its TypeScript source
 * exists: the `./server` export once pointed at a file that did not), and
 * lies inside the package's `files` (before the list existed, `npm pack`
 * shipped no compiled code at all); conclave-client has no dependency, the
 * same version, and nothing of the server; `engines` states the Node floor
 * the code needs. test/integration/package-install.test.ts packs and
 * installs both for real.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')

interface Manifest {
  version: string
  exports: Record<string, string | { types: string; default: string }>
  bin?: Record<string, string>
  files: string[]
  engines: { node: string }
  dependencies?: Record<string, string>
  scripts: Record<string, string>
}

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest
}

/** Module targets of `exports` (package.json itself excluded), as paths relative to the package. */
function targets(m: Manifest): [string, string][] {
  return Object.entries(m.exports).flatMap(([name, e]) =>
    typeof e === 'string' ? [] : [[name, e.default] as [string, string], [name, e.types] as [string, string]],
  )
}

/** Whether `path` (./dist/x.js) is packed under `files`: inside a listed entry, not under a negated one. */
function packed(files: string[], path: string): boolean {
  const p = path.replace(/^\.\//, '')
  const inside = (entry: string) => p === entry || p.startsWith(`${entry}/`)
  const negated = files.filter((f) => f.startsWith('!')).map((f) => f.slice(1))
  const excluded = negated.some((n) => (n.startsWith('**/*') ? p.endsWith(n.slice(4)) : inside(n)))
  return files.some((f) => !f.startsWith('!') && inside(f)) && !excluded
}

/** The TypeScript source a dist path is built from (dist/x/y.js or .d.ts → x/y.ts). */
function source(target: string): string {
  return target.replace(/^\.\/dist\//, '').replace(/\.d\.ts$|\.js$/, '.ts')
}

describe('package.json (conclave: the server, the CLI, the SDK and the recipes)', () => {
  const pkg = manifest('.')

  it('exports only modules that exist', () => {
    const missing: string[] = []
    for (const [name, target] of targets(pkg))
      if (!existsSync(join(ROOT, source(target)))) missing.push(`${name}: ${target} (no ${source(target)})`)
    for (const [name, file] of Object.entries(pkg.bin ?? {}))
      if (!existsSync(join(ROOT, file))) missing.push(`bin ${name}: ${file}`)
    expect(missing).toEqual([])
  })

  it('packs every export and the bin, and builds them before packing', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual([
      './browser',
      './client',
      './package.json',
      './recipes',
      './server',
      './shared',
    ])
    const outside = [...targets(pkg).map(([, t]) => t), ...Object.values(pkg.bin ?? {})].filter(
      (t) => !packed(pkg.files, t),
    )
    expect(outside).toEqual([])
    // The bin loads the CLI from dist/: it must be packed too.
    expect(packed(pkg.files, 'dist/server/cli/main.js')).toBe(true)
    expect(packed(pkg.files, 'dist/test/sim/cli.js')).toBe(false)
    expect(pkg.scripts.prepack).toMatch(/scripts\/pack\.mjs build/)
  })

  it('states the Node versions it runs on: zlib.crc32 needs 20.15 or 22.2, better-sqlite3 skips 21', () => {
    expect(pkg.engines.node).toBe('^20.15.0 || >=22.2.0')
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
    expect((major === 20 && minor >= 15) || (major === 22 && minor >= 2) || major > 22).toBe(true)
  })
})

describe('packages/client/package.json (conclave-client: the SDK and the recipes alone)', () => {
  const client = manifest('packages/client')

  it('has no dependency and the same version as conclave', () => {
    expect(client.dependencies).toBeUndefined()
    expect(client.version).toBe(manifest('.').version)
  })

  it('exports the SDK, the recipes and shared, built from their sources, and packs them', () => {
    expect(Object.keys(client.exports).sort()).toEqual(['.', './package.json', './recipes', './shared'])
    for (const [name, target] of targets(client)) {
      expect(source(target), name).toMatch(/^(client|recipes|shared)\/index\.ts$/)
      expect(existsSync(join(ROOT, source(target))), target).toBe(true)
      expect(packed(client.files, target), target).toBe(true)
    }
    expect(client.files.filter((f) => /server|shell|test/.test(f))).toEqual([])
    expect(client.scripts.prepack).toMatch(/pack\.mjs stage-client/)
  })
})
