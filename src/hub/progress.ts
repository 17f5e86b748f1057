/** Where progress and notes go; process.stderr by default. Never stdout: that is for data. */
export interface TextSink {
  write(s: string): unknown;
  isTTY?: boolean;
}

const UPDATE_MS = 100;

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * One redrawn line per file while it downloads, then a final line. Rate and ETA count only
 * bytes fetched in this run, so a resumed download does not report an absurd speed.
 */
export class FileProgress {
  private readonly startedAt = Date.now();
  private lastDraw = 0;
  private done: number;

  constructor(
    private readonly sink: TextSink | null,
    private readonly name: string,
    private readonly total: number,
    private readonly resumedFrom = 0,
  ) {
    this.done = resumedFrom;
  }

  update(bytes: number): void {
    this.done = bytes;
    if (!this.sink) return;
    const now = Date.now();
    if (now - this.lastDraw < UPDATE_MS) return;
    this.lastDraw = now;
    const secs = (now - this.startedAt) / 1000;
    const rate = secs > 0 ? (this.done - this.resumedFrom) / secs : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    this.sink.write(
      `\r\x1b[K${this.name}  ${formatBytes(this.done)} / ${formatBytes(this.total)}  ${formatBytes(Math.round(rate))}/s  ETA ${formatDuration(eta)}`,
    );
  }

  finish(note = ''): void {
    if (!this.sink) return;
    const secs = (Date.now() - this.startedAt) / 1000;
    const rate = secs > 0 ? (this.done - this.resumedFrom) / secs : 0;
    this.sink.write(
      `\r\x1b[K${this.name}  ${formatBytes(this.done)}  ${note || `done in ${formatDuration(secs)} (${formatBytes(Math.round(rate))}/s)`}\n`,
    );
  }
}
