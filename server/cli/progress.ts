/**
 * Progress output of the long-running operator commands (snapshot save,
 * migrate): on a terminal one line redrawn in place (a bar when the total is
 * known), at most every REDRAW_MS; otherwise a plain line at most every
 * PLAIN_EVERY_MS and at each tenth of the total, so a log file gets a few
 * lines, not thousands. Writes to stderr: stdout keeps the command's result.
 */

const REDRAW_MS = 100
const PLAIN_EVERY_MS = 5000
const BAR_WIDTH = 30

export interface ProgressOptions {
  /** What is counted, e.g. `bytes` or `znodes`. */
  unit: string
  total?: number | undefined
  stream?: NodeJS.WriteStream
  /** Force the terminal form on or off (default: the stream's isTTY). */
  tty?: boolean
}

export class Progress {
  private readonly stream: NodeJS.WriteStream
  private readonly tty: boolean
  private lastDraw = 0
  private lastTenth = -1
  private drawn = false

  constructor(
    private readonly label: string,
    private readonly opts: ProgressOptions,
  ) {
    this.stream = opts.stream ?? process.stderr
    this.tty = opts.tty ?? this.stream.isTTY === true
  }

  set total(n: number | undefined) {
    this.opts.total = n
  }

  update(done: number, note = ''): void {
    const now = Date.now()
    const total = this.opts.total
    if (this.tty) {
      if (now - this.lastDraw < REDRAW_MS) return
      this.lastDraw = now
      this.stream.write(`\r\x1b[K${this.line(done, total, note, true)}`)
      this.drawn = true
      return
    }
    const tenth = total !== undefined && total > 0 ? Math.floor((10 * done) / total) : -1
    if (tenth > this.lastTenth || now - this.lastDraw >= PLAIN_EVERY_MS) {
      this.lastTenth = Math.max(this.lastTenth, tenth)
      this.lastDraw = now
      this.stream.write(`${this.line(done, total, note, false)}\n`)
    }
  }

  /** The last state, always shown; on a terminal the line is finished. */
  done(done: number, note = ''): void {
    const line = this.line(done, this.opts.total, note, this.tty)
    this.stream.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`)
    this.drawn = false
  }

  /** Ends a redrawn line before other output (an error). */
  clear(): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K')
    this.drawn = false
  }

  private line(done: number, total: number | undefined, note: string, bar: boolean): string {
    const unit = this.opts.unit
    let text = `${this.label}: ${done} ${unit}`
    if (total !== undefined && total > 0) {
      const pct = Math.min(100, Math.floor((100 * done) / total))
      const filled = Math.round((BAR_WIDTH * pct) / 100)
      text = bar
        ? `${this.label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${pct}% ${done}/${total} ${unit}`
        : `${this.label}: ${done}/${total} ${unit} (${pct}%)`
    }
    return note === '' ? text : `${text} ${note}`
  }
}
