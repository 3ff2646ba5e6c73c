// Writing a file so that a crash or a kill at any moment leaves either the old file or the new
// one, never a mix: the bytes go to a temporary file in the same folder, are flushed to disk
// (fsync), renamed over the target, and the folder is flushed so that the rename persists.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Writes all of `bytes` at the descriptor's position. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written);
}

/**
 * Calls write(fd) on a temporary file, then puts it in place of `file` atomically and durably.
 * On an error the temporary file is removed and the error rethrown; `file` is untouched.
 */
export function writeAtomically(file: string, write: (fd: number) => void): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd = -1;
  try {
    fd = openSync(temp, 'wx');
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(temp, file);
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
  // Persist the rename itself; directories cannot be opened for fsync on Windows, where rename
  // durability is the filesystem's business.
  try {
    const dirFd = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // see above
  }
}

/** `bytes` written to `file` atomically and durably. */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  writeAtomically(file, (fd) => writeAll(fd, bytes));
}
