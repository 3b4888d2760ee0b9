/**
 * A GGUF file on disk for Node: positional reads through a file descriptor, which the worker crew
 * reads too (share.ts, Op.LOAD). The reader itself (reader.ts) knows only ByteSource.
 */
import * as fs from 'node:fs';
import { GGUFFile, type ByteSource } from './reader.js';
import { GgufError } from './types.js';

export class FileSource implements ByteSource {
  readonly size: number;
  /** the open file descriptor (worker threads of this process may read it too), −1 once closed */
  fd: number;
  constructor(readonly name: string) {
    this.fd = fs.openSync(name, 'r');
    const st = fs.fstatSync(this.fd);
    if (!st.isFile()) {
      fs.closeSync(this.fd);
      throw new Error(st.isDirectory() ? 'it is a directory, not a GGUF file' : 'it is not a regular file');
    }
    this.size = st.size;
  }
  readInto(dst: Uint8Array, position: number): number {
    let done = 0;
    const CHUNK = 1 << 30; // stay far below the 2 GiB per-call limit
    while (done < dst.length) {
      const n = fs.readSync(this.fd, dst, done, Math.min(CHUNK, dst.length - done), position + done);
      if (n <= 0) break;
      done += n;
    }
    return done;
  }
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** open and parse a GGUF file (a GgufError naming the file when it cannot be opened) */
export function openGguf(path: string): GGUFFile {
  let src: FileSource;
  try {
    src = new FileSource(path);
  } catch (e) {
    throw new GgufError(`cannot open: ${(e as Error).message}`, 0, { file: path });
  }
  return GGUFFile.fromSource(src);
}
