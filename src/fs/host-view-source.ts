/**
 * A ViewSource that shows every caller the host's own files. It is what the view serves when
 * virtualization is switched off, and the reference the container views fall back to.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ViewOptions } from '../common/options.js';
import { findViewFile } from '../views/catalog.js';
import type { ViewSource } from '../container/view-source.js';

export class HostViewSource implements ViewSource {
  constructor(private readonly options: Pick<ViewOptions, 'procRoot' | 'sysRoot'>) {}

  content(path: string, _callerPid: number): Buffer {
    const file = findViewFile(path);
    if (!file) return Buffer.alloc(0);
    const root = file.root === 'proc' ? this.options.procRoot : this.options.sysRoot;
    try {
      return readFileSync(join(root, file.hostPath));
    } catch {
      return Buffer.alloc(0);
    }
  }

  visibleCpus(_callerPid: number): readonly number[] | null {
    return null;
  }
}
