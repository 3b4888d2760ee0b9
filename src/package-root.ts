/** Node: the package root (where build/, dist/ and demo/ live), found from this module's location in src/ or dist/src/. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'phi3-ts') return dir;
    dir = path.dirname(dir);
  }
  throw new Error('phi3-ts: cannot find the package root from ' + import.meta.url);
}
