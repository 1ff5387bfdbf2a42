/**
 * The dependency rules of STYLE.md, as a test (in the spirit of
 * TigerBeetle's tidy.zig): the deterministic core uses no clock, timer,
 * randomness, async or I/O module; client/, recipes/ and shared/ never import
 * server/; shared/ imports nothing of ours and no node:* module; the
 * request path reads time only through its injected clock; the shell
 * (client/shell) uses only the SDK's public entry and shared; only
 * server/storage imports better-sqlite3; shipped code imports only the
 * package's runtime dependencies (`ws` is a dev dependency: tests use it as an
 * independent WebSocket peer), and the client imports node:* only lazily.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..', '..')

function sources(dir: string): string[] {
  const abs = join(ROOT, dir)
  let entries: string[]
  try {
    entries = readdirSync(abs)
  } catch {
    return []
  }
  const out: string[] = []
  for (const e of entries) {
    const p = join(abs, e)
    if (statSync(p).isDirectory()) out.push(...sources(relative(ROOT, p)))
    else if (e.endsWith('.ts') && !e.endsWith('.test.ts')) out.push(relative(ROOT, p))
  }
  return out
}

/** Source text without comments, so a header that names a banned API does not trip the rule. */
function code(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}

/** Module specifiers of import/export declarations and literal dynamic imports. */
function moduleSpecifiers(text: string): string[] {
  const patterns = [
    /^\s*(?:import|export)\b[^;'"`]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  return patterns.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!))
}

const PURE = [
  'server/tree',
  'server/txn',
  'server/zab',
  'server/session',
  'server/watch',
  'server/core',
  // The one ZAB driver: the server, the simulation and the unit harness all run it.
  'server/replicate/zab-driver.ts',
]
/** The request path: I/O reaches it through ports; time only through the injected Clock and Timers. */
const CLOCKED = ['server/request']
const CLOCK_CALLS: [RegExp, string][] = [
  [/Date/, 'Date'],
  [/performance\.now/, 'performance.now'],
  [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b/, 'timers'],
  [/Math\.random/, 'Math.random'],
]
const BANNED_CALLS: [RegExp, string][] = [
  [/\bDate\b/, 'Date'],
  [/performance\.now/, 'performance.now'],
  [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/, 'timers'],
  [/\bprocess\./, 'process'],
  [/Math\.random/, 'Math.random'],
  [/\bcrypto\./, 'crypto'],
  [/\basync\b|\bawait\b|\bPromise\b/, 'async/Promise'],
  [/\bEventEmitter\b/, 'EventEmitter'],
]

describe('architecture', () => {
  it('keeps the deterministic core pure', () => {
    const problems: string[] = []
    for (const dir of PURE) {
      for (const file of sources(dir)) {
        const text = code(file)
        for (const [re, name] of BANNED_CALLS) if (re.test(text)) problems.push(`${file} uses ${name}`)
        for (const spec of moduleSpecifiers(text)) {
          const target = spec.startsWith('.') ? relative(ROOT, join(ROOT, dirname(file), spec)) : spec
          // Pure modules may use each other (the tree applies Txns), never anything impure.
          const ok = ['shared/', 'server/core/', ...PURE.map((d) => (d.endsWith('.ts') ? d : `${d}/`))].some(
            (prefix) => target.startsWith(prefix),
          )
          if (!ok) problems.push(`${file} imports ${spec}`)
        }
      }
    }
    expect(problems).toEqual([])
  })

  it('keeps time out of the request path: it reads the injected clock', () => {
    const problems: string[] = []
    for (const dir of CLOCKED) {
      for (const file of sources(dir)) {
        const text = code(file)
        for (const [re, name] of CLOCK_CALLS) if (re.test(text)) problems.push(`${file} uses ${name}`)
      }
    }
    expect(problems).toEqual([])
  })

  it('keeps the shell a client of the public SDK', () => {
    const problems: string[] = []
    for (const file of sources('client/shell')) {
      for (const spec of moduleSpecifiers(code(file))) {
        if (!spec.startsWith('.')) continue
        const target = relative(ROOT, join(ROOT, dirname(file), spec))
        const ok =
          target.startsWith('client/shell/') || target === 'client/index.js' || target.startsWith('shared/')
        if (!ok) problems.push(`${file} imports ${spec} (the shell uses client/index.ts and shared only)`)
      }
    }
    for (const file of sources('client')) {
      if (file.startsWith('client/shell/')) continue
      for (const spec of moduleSpecifiers(code(file)))
        if (/(^|\/)shell\//.test(spec)) problems.push(`${file} imports the shell (${spec})`)
    }
    expect(problems).toEqual([])
  })

  it('keeps client, recipes and shared away from server', () => {
    const problems: string[] = []
    for (const dir of ['client', 'recipes', 'shared']) {
      for (const file of sources(dir)) {
        for (const spec of moduleSpecifiers(code(file))) {
          if (/(^|\/)server\//.test(spec)) problems.push(`${file} imports ${spec}`)
          if (dir === 'shared' && (spec.startsWith('node:') || !spec.startsWith('./')))
            problems.push(`${file} imports ${spec} (shared imports only shared)`)
          if (
            dir === 'recipes' &&
            spec.startsWith('..') &&
            !/\/(client\/index|shared\/[\w-]+)\.js$/.test(spec)
          )
            problems.push(`${file} imports ${spec} (recipes use only client/index.ts and shared)`)
        }
      }
    }
    expect(problems).toEqual([])
  })

  it('lets only server/storage import better-sqlite3', () => {
    const problems: string[] = []
    for (const dir of ['server', 'client', 'recipes', 'shared']) {
      for (const file of sources(dir)) {
        if (file.startsWith('server/storage/')) continue
        if (moduleSpecifiers(code(file)).includes('better-sqlite3')) problems.push(file)
      }
    }
    expect(problems).toEqual([])
  })

  it('imports only runtime dependencies in shipped code, and node:* only lazily in the client', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
    }
    const runtime = new Set(Object.keys(pkg.dependencies))
    const problems: string[] = []
    for (const dir of ['server', 'client', 'recipes', 'shared']) {
      for (const file of sources(dir)) {
        const text = code(file)
        for (const spec of moduleSpecifiers(text)) {
          if (spec.startsWith('.') || spec.startsWith('node:')) continue
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
          if (!runtime.has(name)) problems.push(`${file} imports ${spec}, not a runtime dependency`)
        }
        // The shell is a Node program (a terminal); the SDK itself must bundle for browsers.
        const sdk = dir === 'client' && !file.startsWith('client/shell/')
        if (sdk && /^\s*import\s+(?!type\b)[^(]*from\s*['"]node:/m.test(text))
          problems.push(`${file} imports node:* statically (browser bundles must build without it)`)
      }
    }
    expect(problems).toEqual([])
  })
})
