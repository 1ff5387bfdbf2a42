/**
 * `conclave status [ws://host:port,...]`: asks each server for `srvr`
 * (ZooKeeper's four-letter word, which Conclave answers on its client port)
 * and prints role, epoch, last zxid, sessions and followers. Works against
 * Apache ZooKeeper too (where `srvr` is whitelisted).
 */
import { Socket } from 'node:net'
import { type CommandSpec, formatHelp, parseCommandArgs, positiveIntFlag, UsageError } from './args.js'

export const STATUS_COMMAND: CommandSpec = {
  name: 'status',
  usage: '[options] [ws://host:port,...]',
  summary:
    'Asks each server (default ws://127.0.0.1:2181) for the four-letter word srvr and prints\n' +
    'its answer: mode, epoch, zxid, sessions. Works against Apache ZooKeeper too. Exits 1\n' +
    'only if no server answered.',
  options: {
    timeout: { value: 'MS', default: '3000', help: 'how long to wait for each server' },
  },
  positionals: true,
}

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:(?:ws|wss|tcp):\/\/)?([^:/]+):(\d+)\/?$/.exec(text.trim())
  if (m === null) throw new UsageError(`bad server address '${text}': expected ws://host:port`)
  return { host: m[1]!, port: Number(m[2]) }
}

export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = new Socket()
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`${host}:${port}: no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${host}:${port}: ${err.message}`))
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('utf8'))
    })
    s.connect(port, host, () => s.write(word))
  })
}

export async function runStatus(argv: string[]): Promise<number> {
  const { flags, positionals, help } = parseCommandArgs(argv, STATUS_COMMAND)
  if (help) {
    process.stdout.write(formatHelp(STATUS_COMMAND))
    return 0
  }
  const timeout = positiveIntFlag('--timeout', flags.get('timeout'), 3000, 'ms')
  const list = positionals.length > 0 ? positionals.join(',') : 'ws://127.0.0.1:2181'
  const servers = list.split(',').filter((s) => s.trim() !== '')
  const addresses = servers.map(parseHostPort)
  let failed = 0
  for (const { host, port } of addresses) {
    try {
      const text = await fourLetterWord(host, port, 'srvr', timeout)
      process.stdout.write(`== ${host}:${port}\n${text.trimEnd()}\n`)
    } catch (err) {
      failed++
      process.stdout.write(`== ${host}:${port}\nunreachable: ${(err as Error).message}\n`)
    }
  }
  return failed === servers.length ? 1 : 0
}
