/**
 * The HTTP admin port (off unless `adminPort` is set): `GET /health`
 * (200 while serving clients, 503 otherwise), `GET /metrics` (Prometheus
 * text format), `GET /stat` (JSON, like `srvr`), `GET /commands/<word>`
 * (the four-letter words as text). Read-only: it changes nothing.
 */
import { createServer, type Server } from 'node:http'

export interface AdminSource {
  serving(): boolean
  describe(): Record<string, string | number>
  metrics(): Record<string, string | number>
  fourLetterWord(word: string): string | undefined
}

export function prometheusText(metrics: Record<string, string | number>): string {
  const lines: string[] = []
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value === 'number') {
      lines.push(`# TYPE ${name} gauge`, `${name} ${value}`)
    } else {
      lines.push(`# TYPE ${name} gauge`, `${name}{value=${JSON.stringify(value)}} 1`)
    }
  }
  return `${lines.join('\n')}\n`
}

export class AdminServer {
  private readonly server: Server

  constructor(private readonly source: AdminSource) {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://admin')
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end('method not allowed\n')
        return
      }
      if (url.pathname === '/health') {
        const ok = this.source.serving()
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ status: ok ? 'ok' : 'not serving', mode: this.source.describe().Mode }))
        return
      }
      if (url.pathname === '/metrics') {
        res
          .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
          .end(prometheusText(this.source.metrics()))
        return
      }
      if (url.pathname === '/stat') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.source.describe()))
        return
      }
      const m = /^\/commands\/([a-z]{4})$/.exec(url.pathname)
      const answer = m ? this.source.fourLetterWord(m[1]!) : undefined
      if (answer !== undefined) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(answer)
        return
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    })
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        const a = this.server.address()
        resolve(typeof a === 'object' && a !== null ? a.port : port)
      })
    })
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((r) => this.server.close(() => r()))
  }
}
