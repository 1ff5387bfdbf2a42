/**
 * Whole subtrees: export as JSON, import from JSON, recursive delete.
 *
 * The export format (`conclave-subtree`, version 1):
 *
 *   { "format": "conclave-subtree", "version": 1, "path": "/app", "exported": "<ISO time>",
 *     "root": { "data": "…", "encoding": "utf8" | "base64", "ephemeral"?: true,
 *               "children": { "<name>": { …the same… } } } }
 *
 * Data that is valid UTF-8 is kept as text, anything else as base64.
 * Ephemeral nodes are exported (marked) but never imported: they belong to
 * a session. Import creates persistent nodes under a target path, parents
 * before children; an existing node is left alone, or given the imported
 * data with `overwrite`.
 *
 * Uses only the SDK's public API (client/index.ts). Must not import node:*
 * (bundled for browsers) and no DOM (the unit tests run it in Node).
 */
import { type Client, ErrorCode, ZkError } from '../../client/index.js'
import { utf8OrUndefined } from './format.js'

export interface SubtreeNode {
  data: string
  encoding: 'utf8' | 'base64'
  ephemeral?: boolean
  children: Record<string, SubtreeNode>
}

export interface SubtreeDocument {
  format: 'conclave-subtree'
  version: 1
  path: string
  exported: string
  root: SubtreeNode
}

/** Bound on the nodes one export or import handles. */
export const SUBTREE_NODES_MAX = 100_000

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

function toBase64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text)
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

function encodeData(bytes: Uint8Array): Pick<SubtreeNode, 'data' | 'encoding'> {
  const text = utf8OrUndefined(bytes)
  return text === undefined ? { data: toBase64(bytes), encoding: 'base64' } : { data: text, encoding: 'utf8' }
}

/** Reads the subtree at `path` (breadth by breadth, each level's reads in parallel). */
export async function exportSubtree(
  zk: Client,
  path: string,
  maxNodes = SUBTREE_NODES_MAX,
): Promise<SubtreeDocument> {
  let count = 0
  const read = async (p: string): Promise<SubtreeNode | undefined> => {
    if (++count > maxNodes) throw new Error(`the subtree has more than ${maxNodes} nodes`)
    let got: Awaited<ReturnType<Client['getData']>>
    try {
      got = await zk.getData(p)
    } catch (err) {
      if (ZkError.is(err, ErrorCode.NO_NODE)) return undefined // deleted meanwhile
      throw err
    }
    const node: SubtreeNode = { ...encodeData(got.data), children: {} }
    if (got.stat.ephemeralOwner !== '0x0') node.ephemeral = true
    if (got.stat.numChildren > 0) {
      const names = await zk.getChildren(p).catch((err: unknown) => {
        if (ZkError.is(err, ErrorCode.NO_NODE)) return [] as string[]
        throw err
      })
      const kids = await Promise.all(names.map((n) => read(joinPath(p, n))))
      names.forEach((n, i) => {
        const k = kids[i]
        if (k !== undefined) node.children[n] = k
      })
    }
    return node
  }
  const root = await read(path)
  if (root === undefined) throw new ZkError(ErrorCode.NO_NODE, path, `NO_NODE: ${path}`)
  return { format: 'conclave-subtree', version: 1, path, exported: new Date().toISOString(), root }
}

/** Checks a parsed document's shape; throws with the first problem. */
export function checkDocument(doc: unknown): SubtreeDocument {
  const d = doc as Partial<SubtreeDocument> | null
  if (d === null || typeof d !== 'object') throw new Error('not a JSON object')
  if (d.format !== 'conclave-subtree')
    throw new Error('not a conclave-subtree document ("format" is missing)')
  if (d.version !== 1) throw new Error(`unknown version ${String(d.version)}`)
  const check = (n: unknown, where: string): void => {
    const node = n as Partial<SubtreeNode> | null
    if (node === null || typeof node !== 'object') throw new Error(`${where}: not an object`)
    if (typeof node.data !== 'string') throw new Error(`${where}: "data" is not a string`)
    if (node.encoding !== 'utf8' && node.encoding !== 'base64')
      throw new Error(`${where}: "encoding" must be utf8 or base64`)
    if (node.children === null || typeof node.children !== 'object')
      throw new Error(`${where}: "children" is not an object`)
    for (const [name, child] of Object.entries(node.children)) {
      if (name === '' || name.includes('/'))
        throw new Error(`${where}: bad child name ${JSON.stringify(name)}`)
      check(child, `${where}/${name}`)
    }
  }
  check(d.root, d.path ?? '(root)')
  return d as SubtreeDocument
}

export interface ImportResult {
  created: number
  updated: number
  unchanged: number
  skippedEphemeral: number
}

/**
 * Creates the document's root at `target` and its descendants below it.
 * Existing nodes keep their data unless `overwrite`.
 */
export async function importSubtree(
  zk: Client,
  target: string,
  doc: SubtreeDocument,
  opts: { overwrite?: boolean; maxNodes?: number } = {},
): Promise<ImportResult> {
  const result: ImportResult = { created: 0, updated: 0, unchanged: 0, skippedEphemeral: 0 }
  let count = 0
  const put = async (p: string, node: SubtreeNode): Promise<void> => {
    if (++count > (opts.maxNodes ?? SUBTREE_NODES_MAX)) throw new Error('too many nodes')
    if (node.ephemeral === true) {
      result.skippedEphemeral++
      return
    }
    const data = node.encoding === 'base64' ? fromBase64(node.data) : node.data
    try {
      await zk.create(p, data)
      result.created++
    } catch (err) {
      if (!ZkError.is(err, ErrorCode.NODE_EXISTS)) throw err
      if (opts.overwrite === true) {
        await zk.setData(p, data)
        result.updated++
      } else result.unchanged++
    }
    await Promise.all(Object.entries(node.children).map(([name, child]) => put(joinPath(p, name), child)))
  }
  await put(target, doc.root)
  return result
}

/** The nodes a recursive delete of `path` removes: the node and all its descendants. */
export async function subtreeSize(zk: Client, path: string): Promise<number> {
  return 1 + (await zk.getAllChildrenNumber(path))
}

/**
 * Deletes `path` and everything under it, children before parents; returns
 * the number of nodes deleted. Nodes that vanish meanwhile are fine; a node
 * created meanwhile makes its parent's delete fail with NOT_EMPTY, which is
 * retried after deleting the newcomers (a bounded number of times).
 */
export async function deleteRecursive(
  zk: Client,
  path: string,
  maxNodes = SUBTREE_NODES_MAX,
): Promise<number> {
  let deleted = 0
  let visited = 0
  const remove = async (p: string, attempts = 0): Promise<void> => {
    if (++visited > maxNodes) throw new Error(`more than ${maxNodes} nodes under ${path}`)
    let names: string[]
    try {
      names = await zk.getChildren(p)
    } catch (err) {
      if (ZkError.is(err, ErrorCode.NO_NODE)) return
      throw err
    }
    await Promise.all(names.map((n) => remove(joinPath(p, n))))
    try {
      await zk.delete(p)
      deleted++
    } catch (err) {
      if (ZkError.is(err, ErrorCode.NO_NODE)) return
      if (ZkError.is(err, ErrorCode.NOT_EMPTY) && attempts < 10) return remove(p, attempts + 1)
      throw err
    }
  }
  await remove(path)
  return deleted
}
