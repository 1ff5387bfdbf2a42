/**
 * `conclave status [ws://host:port,...]`: asks each server for `srvr`
 * (ZooKeeper's four-letter word, which Conclave answers on its client port)
 * and prints role, epoch, last zxid, sessions and followers. Works against
 * Apache ZooKeeper too (where `srvr` is whitelisted).
 */
import { Socket } from 'node:net'
import { UsageError } from './args.js'

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
  const list = argv.length > 0 ? argv.join(',') : 'ws://127.0.0.1:2181'
  const servers = list.split(',').filter((s) => s.trim() !== '')
  let failed = 0
  for (const s of servers) {
    const { host, port } = parseHostPort(s)
    try {
      const text = await fourLetterWord(host, port, 'srvr')
      process.stdout.write(`== ${host}:${port}\n${text.trimEnd()}\n`)
    } catch (err) {
      failed++
      process.stdout.write(`== ${host}:${port}\nunreachable: ${(err as Error).message}\n`)
    }
  }
  return failed === servers.length ? 1 : 0
}
