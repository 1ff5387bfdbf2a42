/**
 * The chaos run's outputs (test/chaos/report.ts, timeline.ts, history.ts):
 * the text report names the setup, counts, faults and every checker's
 * problems; the timeline SVG has a lane per server and per client, shades
 * the servers a fault hit, merges touching operations of one outcome and
 * keeps indeterminate ones apart; a history survives its JSON-lines file
 * (indeterminate completions as null, back to infinity).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { type ChaosEvent, type FaultEvent, historyToJsonLines, readHistory } from '../../chaos/history.js'
import { formatReport } from '../../chaos/report.js'
import type { ChaosReport } from '../../chaos/run.js'
import { timelineSvg } from '../../chaos/timeline.js'

const op = (
  process: number,
  f: string,
  at: number,
  to: number | null,
  type: ChaosEvent['type'] = 'ok',
): ChaosEvent => ({
  workload: process < 2 ? 'registers' : 'queue',
  process,
  f,
  key: '/k',
  value: { f },
  type: to === null ? 'info' : type,
  invokedAt: at,
  returnedAt: to ?? Number.POSITIVE_INFINITY,
})
const events = [
  op(0, 'read', 0, 5),
  op(0, 'read', 5, 10),
  op(0, 'read', 10, 15),
  op(0, 'write', 15, null),
  op(1, 'cas', 0, 900, 'fail'),
  op(2, 'put', 100, 200),
]
const faults: FaultEvent[] = [
  { kind: 'kill', targets: [2], detail: 'kill -9 n2', leader: 2, startAt: 300, endAt: 800 },
  { kind: 'partition-halves', targets: [1], detail: 'n1 | n2,n3', leader: 2, startAt: 850, endAt: 950 },
]

describe('chaos outputs', () => {
  it('draws a lane per server and client, shaded faults, merged and indeterminate bars', () => {
    const svg = timelineSvg(events, faults, [1, 2, 3], 1000)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
    for (const lane of ['server n1', 'server n2', 'server n3', 'registers c0', 'registers c1', 'queue c2'])
      expect(svg).toContain(`>${lane}</text>`)
    // The three touching reads of c0 are one bar; its indeterminate write stands alone.
    expect(svg).toContain('3 operations, ok')
    expect(svg).toContain('write /k {&quot;f&quot;:&quot;write&quot;} → info')
    // Each fault: a faint span over every lane and a solid one on each server it hit.
    expect(svg.match(/kill: kill -9 n2/g)?.length).toBeGreaterThanOrEqual(2)
    expect(svg).toContain('partition-halves: n1 | n2,n3')
  })

  it('draws a long run (200,000 operations) without overflowing the stack', () => {
    const many = Array.from({ length: 200_000 }, (_, i) => op(i % 8, 'read', i, i + 0.5))
    expect(timelineSvg(many, faults, [1, 2, 3], 200_000)).toContain('server n3')
  })

  it('reports the setup, the counts, the faults and each problem', () => {
    const r: ChaosReport = {
      target: 'conclave',
      seed: 42,
      servers: 3,
      observer: true,
      majority: false,
      durationMs: 1000,
      reads: 'sync',
      members: [
        { id: 1, observer: false, connectString: 'ws://127.0.0.1:1' },
        { id: 4, observer: true, connectString: 'ws://127.0.0.1:4' },
      ],
      workloads: { registers: { ok: 4, fail: 1, info: 1 }, queue: { ok: 1, fail: 0, info: 0 } },
      operations: 6,
      faults,
      verdicts: [
        {
          workload: 'registers',
          valid: false,
          problems: ['/k is not linearizable:\nline two'],
          summary: '1 keys',
        },
        { workload: 'queue', valid: true, problems: [], summary: '1 put' },
      ],
      valid: false,
      checkMs: 3,
    }
    const text = formatReport(r)
    expect(text).toContain('chaos run: conclave, 3 voters + 1 observer, seed 42, 1.0 s, reads sync')
    expect(text).toContain('n4 (observer) ws://127.0.0.1:4')
    expect(text).toContain('verdict: ANOMALY')
    expect(text).toMatch(/registers +6 +\(4 \/ 1 \/ 1\)/)
    expect(text).toContain('0.3–0.8     kill: kill -9 n2 (leader was n2)')
    expect(text).toContain('    - /k is not linearizable:\n      line two')
    expect(text).toMatch(/queue +ok +1 put/)
  })

  it('keeps a history in JSON lines, indeterminate completions as null', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chaos-history-'))
    try {
      const file = join(dir, 'history.jsonl')
      const text = historyToJsonLines(events, faults)
      expect(text).toContain('"returnedAt":null')
      writeFileSync(file, text)
      const back = readHistory(file)
      expect(back.faults).toEqual(faults)
      expect(back.events).toEqual(events)
      writeFileSync(file, '{"workload":"x"}\n')
      expect(() => readHistory(file)).toThrow(/history.jsonl:1: not an operation/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
