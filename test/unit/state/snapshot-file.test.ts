/**
 * The backup formats (server/state/snapshot-file.ts, snapshot-transfer.ts),
 * on random trees built through the server's write path (workload.ts):
 * - a snapshot file round-trips: the header names the tree's zxid, digest
 *   and counts, verifySnapshotFile rebuilds the same tree;
 * - any truncation, any flipped byte and any appended byte is refused with
 *   SnapshotFileError (nothing else), never read as a smaller tree;
 * - the transfer stream parses the same however its bytes are cut, and a
 *   frame out of order, unknown, too long or after the end is TransferError.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  countSnapshot,
  encodeSnapshotFile,
  readSnapshotFileHeader,
  SnapshotFileError,
  verifySnapshotFile,
} from '../../../server/state/snapshot-file.js'
import {
  chunkFrame,
  endFrame,
  logFrame,
  startFrame,
  TransferError,
  TransferReader,
} from '../../../server/state/snapshot-transfer.js'
import { DataTree } from '../../../server/tree/data-tree.js'
import { expectSameDump, fullDump } from '../tree/compare.js'
import { cmdsArb, Driver, runs } from './workload.js'

function treeOf(cmds: Parameters<Driver['step']>[0][]): Driver {
  const d = new Driver()
  for (const c of cmds) d.step(c)
  d.applyAll()
  return d
}

function fileOf(tree: DataTree, chunkBytes: number): Buffer {
  const { zxid, chunks } = tree.snapshot({ chunkBytes })
  const all = [...chunks]
  const { parts } = encodeSnapshotFile({ zxid, digest: tree.digest(), chunks: all }, 7)
  return Buffer.concat(parts)
}

describe('snapshot file', () => {
  it('round-trips a tree: zxid, digest, counts in the header; the same tree rebuilt', () => {
    fc.assert(
      fc.property(
        cmdsArb(80, { restarts: false }),
        fc.integer({ min: 40, max: 2000 }),
        (cmds, chunkBytes) => {
          const d = treeOf(cmds)
          const bytes = fileOf(d.tree, chunkBytes)
          const { header, tree } = verifySnapshotFile(bytes)
          expect(header.zxid).toBe(d.tree.lastZxid)
          expect(header.digest).toBe(d.tree.digest())
          expect(header.serverId).toBe(7)
          expect(header.counts.znodes).toBe(d.tree.nodeCount())
          expect(header.counts.sessions).toBe(d.tree.sessions().length)
          expect(readSnapshotFileHeader(bytes).header).toEqual(header)
          expectSameDump(fullDump(tree, d.timeMs), fullDump(d.tree, d.timeMs))
        },
      ),
      { numRuns: runs(100) },
    )
  })

  it('refuses every truncation, flipped byte and appended byte with SnapshotFileError', () => {
    fc.assert(
      fc.property(
        cmdsArb(40, { restarts: false }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (cmds, at, flip) => {
          const bytes = fileOf(treeOf(cmds).tree, 256)
          const cut = at % bytes.length
          expect(() => verifySnapshotFile(bytes.subarray(0, cut))).toThrow(SnapshotFileError)
          const damaged = Buffer.from(bytes)
          damaged[cut] = damaged[cut]! ^ flip
          expect(() => verifySnapshotFile(damaged)).toThrow(SnapshotFileError)
          expect(() => verifySnapshotFile(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(
            SnapshotFileError,
          )
        },
      ),
      { numRuns: runs(200) },
    )
  })

  it('names what is wrong', () => {
    expect(() => verifySnapshotFile(Buffer.from('PK\u0003\u0004 a zip file'))).toThrow(/no CNCLSNAP magic/)
    const bytes = fileOf(new DataTree(), 64)
    const v2 = Buffer.from(bytes)
    v2.writeUInt32BE(2, 8)
    expect(() => verifySnapshotFile(v2)).toThrow(/unsupported snapshot file format 2/)
    expect(() => verifySnapshotFile(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated inside chunk/)
    const { counts } = countSnapshot([...new DataTree().snapshot().chunks])
    const znodes = new DataTree().nodeCount()
    expect(counts).toEqual({ znodes, ephemerals: 0, containers: 0, ttl: 0, sessions: 0, writeMemories: 0 })
  })
})

describe('snapshot transfer stream', () => {
  const frames = (): Buffer => {
    const chunks = [...new DataTree().snapshot().chunks]
    return Buffer.concat([
      ...startFrame({ serverId: 1, zxidStart: 5, znodes: 1, treeBytesEstimate: 100 }),
      ...chunks.flatMap((c) => chunkFrame(c)),
      ...logFrame(0x100000006, new Uint8Array([1, 2, 3])),
      ...logFrame(2 ** 40 + 7, new Uint8Array([])),
      ...endFrame({ zxidEnd: 2 ** 40 + 7, digest: 'abc', chunks: chunks.length, entries: 2 }),
    ])
  }

  it('parses the same however the bytes are cut', () => {
    const all = frames()
    const whole = new TransferReader().push(all)
    expect(whole.map((f) => f.type)).toEqual(['start', 'chunk', 'log', 'log', 'end'])
    const log = whole[2]!
    expect(log.type === 'log' && log.zxid === 0x100000006 && [...log.data]).toEqual([1, 2, 3])
    expect(whole[3]!.type === 'log' && whole[3]!.zxid).toBe(2 ** 40 + 7)
    fc.assert(
      fc.property(fc.array(fc.nat(all.length), { maxLength: 20 }), (cuts) => {
        const points = [...new Set([0, ...cuts, all.length])].sort((a, b) => a - b)
        const r = new TransferReader()
        const got = []
        for (let i = 1; i < points.length; i++) got.push(...r.push(all.subarray(points[i - 1], points[i])))
        expect(r.ended).toBe(true)
        expect(got).toEqual(whole)
      }),
      { numRuns: runs(200) },
    )
  })

  it('refuses frames out of order, unknown, too long, or after the end', () => {
    const start = Buffer.concat(startFrame({ serverId: 1, zxidStart: 0, znodes: 1, treeBytesEstimate: 1 }))
    const end = Buffer.concat(endFrame({ zxidEnd: 0, digest: 'x', chunks: 0, entries: 0 }))
    expect(() => new TransferReader().push(Buffer.concat(chunkFrame(new Uint8Array(1))))).toThrow(
      TransferError,
    )
    expect(() => new TransferReader().push(Buffer.concat([start, start]))).toThrow(/second start/)
    expect(() => new TransferReader().push(Buffer.concat([start, Buffer.from([0x5a, 0, 0, 0, 0])]))).toThrow(
      /unknown frame type/,
    )
    expect(() =>
      new TransferReader().push(Buffer.concat([start, Buffer.from([0x43, 0xff, 0, 0, 0])])),
    ).toThrow(/too long/)
    expect(() => new TransferReader().push(Buffer.concat([start, end, start]))).toThrow(/after the end/)
    expect(() =>
      new TransferReader().push(Buffer.concat([start, Buffer.from([0x4c, 0, 0, 0, 2, 1, 2])])),
    ).toThrow(/without its zxid/)
  })
})
