/**
 * The output of a batch run: JSON lines, one per image, appended in small
 * groups, each group one write(2) followed by fdatasync, so a run killed at
 * any moment leaves whole lines behind (at most a torn last one, which
 * --resume cuts off) and every line written is on disk. Lines still in the
 * buffer when the process dies were never written: their images are redone.
 */

import { closeSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DetectionResult } from '../detector.js';

export interface BatchError {
  code: string;
  message: string;
  /** The HTTP status, when a server answered. */
  status?: number;
}

/** One output line. */
export type BatchRecord = { path: string; sha256?: string; attempts: number } & ({ result: DetectionResult } | { error: BatchError });

export class JournalError extends Error {}

export interface JournalOptions {
  /** Lines per write (default 16). */
  groupSize?: number;
  /** A partial group is written after this long (default 1000 ms). */
  flushMs?: number;
}

export class OutputJournal {
  private readonly pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly groupSize: number;
  private readonly flushMs: number;

  private constructor(
    private readonly fd: number,
    /** The lines already in the file when it was opened, by resolved path. */
    readonly existing: ReadonlyMap<string, BatchRecord>,
    options: JournalOptions,
  ) {
    this.groupSize = options.groupSize ?? 16;
    this.flushMs = options.flushMs ?? 1000;
  }

  /**
   * @param resume continue an existing file (its images are not redone); without it the file must not exist or be empty.
   * @throws JournalError when the file exists without resume, or holds a line that is not an output line.
   */
  static open(file: string, resume: boolean, options: JournalOptions = {}): OutputJournal {
    const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    if (size > 0 && !resume) throw new JournalError(`${file} exists; pass --resume to continue that run, or name another --out`);
    const existing = new Map<string, BatchRecord>();
    let complete = 0;
    if (size > 0) {
      const text = readFileSync(file, 'utf8');
      complete = text.lastIndexOf('\n') + 1; // a torn last line (killed mid-write) is dropped
      for (const [i, line] of text.slice(0, complete).split('\n').entries()) {
        if (line === '') continue;
        let record: BatchRecord;
        try {
          record = JSON.parse(line) as BatchRecord;
        } catch {
          throw new JournalError(`${file}:${i + 1} is not JSON; is it the output of rcnn-serve batch?`);
        }
        if (typeof record.path !== 'string' || !('result' in record || 'error' in record)) throw new JournalError(`${file}:${i + 1} is not a batch output line (it needs "path" and "result" or "error")`);
        existing.set(resolve(record.path), record);
      }
    }
    mkdirSync(dirname(file), { recursive: true });
    const fd = openSync(file, size > 0 ? 'r+' : 'a');
    if (size > complete) ftruncateSync(fd, complete);
    // Appending from the end of the whole lines (r+ writes at the position we give).
    const journal = new OutputJournal(fd, existing, options);
    journal.position = complete;
    return journal;
  }

  private position = 0;

  append(record: BatchRecord): void {
    this.pending.push(`${JSON.stringify(record)}\n`);
    if (this.pending.length >= this.groupSize) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Writes the buffered lines now, in one write, and syncs them to disk. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(''));
    this.pending.length = 0;
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off, this.position + off);
    this.position += bytes.length;
    fdatasyncSync(this.fd);
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Every line of an output file (for --coco), torn last line excluded. */
export function readJournal(file: string): BatchRecord[] {
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as BatchRecord);
}
