/**
 * The server's log formats (server/cli/log-format.ts): auto picks pretty on a
 * terminal and JSON otherwise; a pretty line has the time, the level, the
 * server and component, the message and the other fields, and an error's
 * stack below it; colours only when asked; the same pino logger writes
 * either format.
 */
import { describe, expect, it } from 'vitest'
import { UsageError } from '../../../server/cli/args.js'
import { chooseLogFormat, createServerLogger, formatLogLine } from '../../../server/cli/log-format.js'

const clock = () => '14:03:07.412'

describe('chooseLogFormat', () => {
  it('auto (the default) is pretty on a terminal, JSON otherwise; an explicit format wins', () => {
    expect(chooseLogFormat(undefined, true)).toBe('pretty')
    expect(chooseLogFormat(undefined, false)).toBe('json')
    expect(chooseLogFormat('auto', true)).toBe('pretty')
    expect(chooseLogFormat('json', true)).toBe('json')
    expect(chooseLogFormat('pretty', false)).toBe('pretty')
  })

  it('refuses another format, naming the flag', () => {
    expect(() => chooseLogFormat('fancy', true)).toThrow(UsageError)
    expect(() => chooseLogFormat('fancy', true)).toThrow(
      '--log-format (got "fancy"): expected auto, json, pretty',
    )
  })
})

describe('formatLogLine', () => {
  it('prints time, level, server and component, message, then the fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: 1_700_000_000_000,
      server: 2,
      component: 'net',
      remote: '10.0.0.7',
      reason: 'too many connections',
      n: 3,
      ok: false,
      detail: { a: 1 },
      msg: 'connection refused',
    })
    expect(formatLogLine(line, { colors: false, clock })).toBe(
      '14:03:07.412 WARN  server 2 net: connection refused  remote=10.0.0.7 reason="too many connections" n=3 ok=false detail={"a":1}\n',
    )
  })

  it('prints a line without server, component or fields as just the message', () => {
    expect(
      formatLogLine(JSON.stringify({ level: 30, time: 0, msg: 'hello' }), { colors: false, clock }),
    ).toBe('14:03:07.412 INFO  hello\n')
  })

  it("puts an error's type and message among the fields and its stack below", () => {
    const err = {
      type: 'StorageError',
      message: 'fsync failed',
      stack: 'StorageError: fsync failed\n    at a (x.js:1:2)\n    at b (y.js:3:4)',
    }
    const out = formatLogLine(
      JSON.stringify({ level: 60, time: 0, server: 1, err, msg: 'fatal error; exiting' }),
      {
        colors: false,
        clock,
      },
    )
    expect(out).toBe(
      '14:03:07.412 FATAL server 1: fatal error; exiting  err="StorageError: fsync failed"\n    at a (x.js:1:2)\n    at b (y.js:3:4)\n',
    )
  })

  it('colours the level only when asked', () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: 'bad' })
    expect(formatLogLine(line, { colors: true, clock })).toContain('\x1b[31mERROR\x1b[0m')
    expect(formatLogLine(line, { colors: false, clock })).not.toContain('\x1b[')
  })

  it('passes through a line that is not a JSON object', () => {
    expect(formatLogLine('not json', { colors: false })).toBe('not json\n')
    expect(formatLogLine('[1,2]\n', { colors: false })).toBe('[1,2]\n')
  })

  it('formats local time as HH:MM:SS.mmm by default', () => {
    const out = formatLogLine(JSON.stringify({ level: 30, time: Date.now(), msg: 'x' }), { colors: false })
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}x\n$/)
  })
})

describe('createServerLogger', () => {
  function capture() {
    const lines: string[] = []
    return { lines, out: { write: (s: string) => lines.push(s) } }
  }

  it('writes JSON lines with the server id, or the same event as a pretty line', () => {
    const json = capture()
    createServerLogger({ level: 'info', serverId: 3, format: 'json', out: json.out })
      .child({ component: 'zab' })
      .info({ epoch: 2 }, 'role')
    expect(JSON.parse(json.lines[0]!)).toMatchObject({
      level: 30,
      server: 3,
      component: 'zab',
      epoch: 2,
      msg: 'role',
    })
    const pretty = capture()
    createServerLogger({ level: 'info', serverId: 3, format: 'pretty', out: pretty.out, colors: false })
      .child({ component: 'zab' })
      .info({ epoch: 2 }, 'role')
    expect(pretty.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}server 3 zab: role {2}epoch=2\n$/)
  })

  it('honours the level', () => {
    const c = capture()
    const log = createServerLogger({
      level: 'warn',
      serverId: 1,
      format: 'pretty',
      out: c.out,
      colors: false,
    })
    log.info('quiet')
    log.warn('loud')
    expect(c.lines).toHaveLength(1)
    expect(c.lines[0]).toContain('loud')
  })
})
