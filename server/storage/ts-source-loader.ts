/**
 * Running storage code from TypeScript source, for tests: Node 20 cannot load
 * `.ts` files and vitest transforms only its own module graph, not worker
 * threads or child processes. This module holds a tiny module-customization
 * hook (passed to `module.register` as a data: URL, so it needs no file of
 * its own) that strips types with the project's `typescript` devDependency
 * (`transpileModule`, safe because tsconfig has isolatedModules) and maps
 * `./x.js` imports from a `.ts` file to `./x.ts`. Transpiled text is cached in
 * `node_modules/.cache/conclave-ts-loader/` keyed by a hash of path and source,
 * so `typescript` is loaded only on a cache miss.
 *
 * Production never takes this path: compiled code (dist/**.js) starts the
 * worker from `storage-worker.js` directly (see worker-launcher.ts).
 *
 * Invariants: only `file:` URLs ending in `.ts` are transformed; anything else
 * goes to the next hook unchanged. Cache files are written atomically
 * (temp file + rename), so concurrent test processes never read half a file.
 *
 * Must not import: better-sqlite3, anything of ours (the hook runs on Node's
 * loader thread with only its own code).
 */
import { fileURLToPath } from 'node:url'

const HOOKS_VERSION = 'conclave-ts-loader-1'

const HOOKS_SOURCE = `
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
let settings
let ts
export function initialize(data) { settings = data }
export async function resolve(specifier, context, next) {
  const parent = context.parentURL
  if (parent && parent.startsWith('file:') && parent.endsWith('.ts') && /^\\.\\.?\\//.test(specifier) && specifier.endsWith('.js')) {
    const candidate = new URL(specifier.slice(0, -3) + '.ts', parent)
    if (existsSync(fileURLToPath(candidate))) return { url: candidate.href, format: 'module', shortCircuit: true }
  }
  return next(specifier, context)
}
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context)
  return { format: 'module', source: transpile(fileURLToPath(url)), shortCircuit: true }
}
function transpile(path) {
  const text = readFileSync(path, 'utf8')
  const key = createHash('sha256').update(settings.version).update(path).update(text).digest('hex')
  const cached = join(settings.cacheDir, key + '.js')
  try { return readFileSync(cached, 'utf8') } catch {}
  ts ??= createRequire(settings.packageJson)('typescript')
  const out = ts.transpileModule(text, {
    fileName: path,
    compilerOptions: {
      module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true, inlineSourceMap: true,
    },
  }).outputText
  mkdirSync(settings.cacheDir, { recursive: true })
  const tmp = cached + '.' + process.pid + '.' + Math.random().toString(36).slice(2) + '.tmp'
  writeFileSync(tmp, out)
  renameSync(tmp, cached)
  return out
}
`

export interface TsLoaderRegistration {
  hooksUrl: string
  data: { version: string; cacheDir: string; packageJson: string }
}

/** What `module.register` needs to load `.ts` files in this thread. */
export function tsLoaderRegistration(): TsLoaderRegistration {
  const packageJson = fileURLToPath(new URL('../../package.json', import.meta.url))
  const cacheDir = fileURLToPath(new URL('../../node_modules/.cache/conclave-ts-loader/', import.meta.url))
  return {
    hooksUrl: `data:text/javascript,${encodeURIComponent(HOOKS_SOURCE)}`,
    data: { version: HOOKS_VERSION, cacheDir, packageJson },
  }
}

/**
 * Node flags that let a child process run a `.ts` entry file from source:
 * `spawn(process.execPath, [...tsSourceExecArgv(), 'script.ts'])`.
 */
export function tsSourceExecArgv(): string[] {
  const reg = tsLoaderRegistration()
  const registerModule =
    `import { register } from 'node:module'\n` +
    `register(${JSON.stringify(reg.hooksUrl)}, { data: ${JSON.stringify(reg.data)} })\n`
  return ['--import', `data:text/javascript,${encodeURIComponent(registerModule)}`]
}

/** CommonJS code for an `eval: true` worker: registers the hooks, then imports `workerData.sourceEntry`. */
export const TS_WORKER_BOOTSTRAP = `
const { register } = require('node:module')
const { workerData } = require('node:worker_threads')
register(workerData.sourceLoader.hooksUrl, { data: workerData.sourceLoader.data })
import(workerData.sourceEntry).catch((err) => { setImmediate(() => { throw err }) })
`
