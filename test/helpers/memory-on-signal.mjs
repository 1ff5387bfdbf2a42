// Preloaded (node --import) into a server process by test/helpers/server-cost.ts:
// on SIGUSR2 it runs two full garbage collections (the process is started with
// --expose-gc) and writes process.memoryUsage() as JSON to the file named by
// CONCLAVE_MEMORY_FILE, so a test or a measurement script reads what the
// server retains, not the garbage it has not collected yet. Nothing here runs
// unless the signal comes; the server's own code is not changed.
import { renameSync, writeFileSync } from 'node:fs'

const file = process.env.CONCLAVE_MEMORY_FILE
if (file !== undefined && file !== '') {
  process.on('SIGUSR2', () => {
    globalThis.gc?.()
    globalThis.gc?.()
    const tmp = `${file}.tmp`
    writeFileSync(tmp, JSON.stringify(process.memoryUsage()))
    renameSync(tmp, file)
  })
}
