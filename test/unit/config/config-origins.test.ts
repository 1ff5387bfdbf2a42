/**
 * allowedOrigins reaches the server from every way of configuring it: the
 * --allowed-origins flag and a key=value file (comma lists), a JSON file
 * (an array); it defaults to none, and a wrong type is a ConfigError that
 * names the field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { configInput } from '../../../server/cli/server-command.js'
import { ConfigError, parseConfig, readConfigFile } from '../../../server/config.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function file(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'conclave-config-'))
  dirs.push(dir)
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}

describe('allowedOrigins', () => {
  it('defaults to none', () => {
    expect(parseConfig({}).allowedOrigins).toEqual([])
  })

  it('comes from --allowed-origins as a comma list', () => {
    const c = parseConfig(configInput(['--allowed-origins', 'https://a.example, https://b.example,']))
    expect(c.allowedOrigins).toEqual(['https://a.example', 'https://b.example'])
  })

  it('comes from a key=value file as a comma list, and from JSON as an array', () => {
    const kv = file('zoo.cfg', 'tickTime=2000\nallowedOrigins=https://a.example,*\n')
    expect(parseConfig(readConfigFile(kv)).allowedOrigins).toEqual(['https://a.example', '*'])
    const json = file('conclave.json', JSON.stringify({ allowedOrigins: ['https://c.example'] }))
    expect(parseConfig(readConfigFile(json)).allowedOrigins).toEqual(['https://c.example'])
  })

  it('refuses a value that is not a list of strings, naming the field', () => {
    expect(() => parseConfig({ allowedOrigins: 'https://a.example' })).toThrow(ConfigError)
    expect(() => parseConfig({ allowedOrigins: [''] })).toThrow(/allowedOrigins/)
  })
})
