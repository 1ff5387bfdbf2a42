/**
 * ZAB datadriven scenarios: every testdata/*.txt file is a specification of
 * one subtle point of the protocol, run command by command over the unit
 * Harness (zab-scenario.ts), each command's output compared with the golden
 * text below it. `UPDATE=1 npx vitest run test/unit/zab/datadriven.test.ts`
 * rewrites the goldens (review the git diff); without it, a difference fails
 * with the file, line, command and a line diff.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { diffLines, parseCases, parseCommand, rewrite } from './datadriven.js'
import { UsageError, ZabScenario } from './zab-scenario.js'

const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata')
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort()
const update = process.env['UPDATE'] === '1'

describe('ZAB datadriven scenarios', () => {
  it('has scenario files', () => {
    expect(files.length).toBeGreaterThanOrEqual(8)
  })

  for (const file of files) {
    it(file, () => {
      const path = join(dir, file)
      const source = readFileSync(path, 'utf8')
      expect(source.startsWith('#'), `${file} must open with comment lines saying what it shows`).toBe(true)
      const cases = parseCases(file, source)
      const scenario = new ZabScenario()
      const actual = cases.map((c) => {
        try {
          return scenario.run(c.command)
        } catch (err) {
          throw new Error(`testdata/${file}:${c.line}: ${c.text}: ${(err as Error).message}`)
        }
      })
      if (update) {
        writeFileSync(path, rewrite(source, cases, actual))
        return
      }
      const failures = cases.flatMap((c, k) =>
        actual[k] === c.expected
          ? []
          : [`testdata/${file}:${c.line}: ${c.text}\n${diffLines(c.expected, actual[k]!)}`],
      )
      if (failures.length > 0) {
        expect.fail(
          `golden output differs (- expected, + actual; UPDATE=1 rewrites):\n\n${failures.join('\n\n')}`,
        )
      }
    })
  }
})

describe('datadriven format', () => {
  const source = [
    '# c',
    'new voters=1,2',
    '1: current=1',
    '----',
    'old',
    'lines',
    '',
    'status',
    '----',
    '',
  ].join('\n')

  it('parses commands, inputs and expected blocks', () => {
    const cases = parseCases('x.txt', source)
    expect(cases.map((c) => [c.line, c.command.name, c.command.input, c.expected])).toEqual([
      [2, 'new', ['1: current=1'], 'old\nlines'],
      [8, 'status', [], ''],
    ])
    expect(parseCommand('cut 1 3 n=2', [])).toMatchObject({
      positional: ['1', '3'],
      args: new Map([['n', '2']]),
    })
    expect(() => parseCases('x.txt', 'status\n\n----\n')).toThrow('x.txt:1: no ---- after "status"')
  })

  it('rewrites only the expected blocks', () => {
    const cases = parseCases('x.txt', source)
    expect(rewrite(source, cases, ['new', 'ok'])).toBe(
      ['# c', 'new voters=1,2', '1: current=1', '----', 'new', '', 'status', '----', 'ok', ''].join('\n'),
    )
  })

  it('refuses a command it does not understand, so UPDATE=1 cannot record it as a golden', () => {
    const s = new ZabScenario()
    expect(() => s.run(parseCommand('settle', []))).toThrow(UsageError)
    s.run(parseCommand('new voters=1,2,3', []))
    expect(() => s.run(parseCommand('crash 9', []))).toThrow('no server 9')
    expect(() => s.run(parseCommand('tick count=2', []))).toThrow('tick: unknown key count')
    expect(() => s.run(parseCommand('frobnicate', []))).toThrow('unknown command frobnicate')
    // What the ensemble cannot do is output, not a usage error.
    s.run(parseCommand('crash 2', []))
    s.run(parseCommand('crash 3', []))
    expect(s.run(parseCommand('settle max=5', []))).toMatch(/^error: condition not reached/)
  })

  it('diffs line by line', () => {
    expect(diffLines('a\nb\nc', 'a\nx\nc')).toBe('  a\n- b\n+ x\n  c')
  })
})
